//! A `SlotId` names a slot of the pool that handed it out, and no other: `PacketPool`'s
//! safe API panics on an id from another pool (a larger one: past the end; one of the
//! same size: a slot someone else may hold) in release builds too, instead of reading or
//! writing out of bounds. Run it with `cargo test --release -p shared-core --test
//! pool_provenance` as well: the checks must not be `debug_assert`s.

use shared_core::net::{PacketPool, SlotId};

/// All of a pool's slots, taken.
fn take_all(pool: &mut PacketPool) -> Vec<SlotId> {
    (0..pool.capacity()).map(|_| pool.alloc().unwrap()).collect()
}

#[test]
#[should_panic(expected = "from another pool")]
fn buf_with_a_slot_of_a_larger_pool_panics() {
    let a = PacketPool::new(1, 64);
    let mut b = PacketPool::new(8, 64);
    let ids = take_all(&mut b);
    let bytes = a.buf(&ids[7]);
    // Only reached without the check: use the bytes so the read is not optimised away.
    println!("read {} bytes past the pool: {}", bytes.len(), bytes.iter().map(|&x| x as u32).sum::<u32>());
}

#[test]
#[should_panic(expected = "from another pool")]
fn buf_mut_with_a_slot_of_a_larger_pool_panics() {
    let mut a = PacketPool::new(1, 64);
    let mut b = PacketPool::new(8, 64);
    let ids = take_all(&mut b);
    let bytes = a.buf_mut(&ids[7]);
    bytes.fill(0xAA);
    println!("wrote {} bytes past the pool", std::hint::black_box(bytes).len());
}

#[test]
#[should_panic(expected = "from another pool")]
fn a_slot_of_another_pool_of_the_same_size_is_refused_too() {
    let mut a = PacketPool::new(4, 64);
    let mut b = PacketPool::new(4, 64);
    let _held_in_a = take_all(&mut a);
    let ids = take_all(&mut b);
    // In bounds for `a`, but `a`'s slot 0 belongs to whoever holds `_held_in_a[0]`.
    let bytes = a.buf(&ids[0]);
    println!("{}", std::hint::black_box(bytes).len());
}

#[test]
#[should_panic(expected = "from another pool")]
fn freeing_a_slot_of_another_pool_panics() {
    let mut a = PacketPool::new(4, 64);
    let mut b = PacketPool::new(4, 64);
    let _held_in_a = take_all(&mut a);
    let mut ids = take_all(&mut b);
    a.free(ids.pop().unwrap());
}

#[test]
fn the_pool_s_own_slots_work_after_a_refusal() {
    let mut a = PacketPool::new(2, 64);
    let mut b = PacketPool::new(2, 64);
    let foreign = b.alloc().unwrap();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.buf(&foreign).len()));
    assert!(refused.is_err());
    let own = a.alloc().unwrap();
    a.buf_mut(&own)[0] = 9;
    assert_eq!(a.buf(&own)[0], 9);
    a.free(own);
    b.free(foreign);
    assert_eq!((a.available(), b.available()), (2, 2));
}
