//! `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp` for a guest without a libc.
//!
//! The precompiled `core` for `x86_64-unknown-linux-gnu` calls these C functions and
//! expects libc to provide them (its `compiler_builtins` leaves them out on that target).
//! Solo5 has no libc, so they are here. They are written with x86 string instructions
//! and volatile loops, never plain loops, so the compiler cannot turn them back into calls
//! to themselves.

use core::arch::asm;
use core::ffi::c_int;

/// # Safety
/// C `memcpy`: `n` bytes, non-overlapping, both valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; `rep movsb` copies forwards with DF clear (the ABI
    // guarantees it on entry).
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _, options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// C `memmove`: `n` bytes, possibly overlapping, both valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize) <= (src as usize) || (dest as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: forwards copying is correct when dest is below src or past its end.
        return unsafe { memcpy(dest, src, n) };
    }
    // Overlapping with dest above src: copy backwards (DF set, then cleared again).
    // SAFETY: the caller's contract; pointers start at the last byte of each range.
    unsafe {
        asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dest.add(n).wrapping_sub(1) => _,
            inout("rsi") src.add(n).wrapping_sub(1) => _,
            options(nostack),
        );
    }
    dest
}

/// # Safety
/// C `memset`: `n` valid bytes at `dest`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, value: c_int, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") value as u8, options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// C `memcmp`: `n` valid bytes at each pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    for i in 0..n {
        // SAFETY: in bounds by the caller's contract; volatile keeps this a loop.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return c_int::from(x) - c_int::from(y);
        }
    }
    0
}

/// # Safety
/// C `bcmp`: as `memcmp`, only equality matters.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    // SAFETY: same contract.
    unsafe { memcmp(a, b, n) }
}

/// # Safety
/// C `strlen`: a NUL-terminated string (`CStr::from_ptr` calls it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the string is NUL-terminated by the caller's contract.
    while unsafe { s.add(n).read_volatile() } != 0 {
        n += 1;
    }
    n
}

// The precompiled `alloc` contains landing pads that name the unwinder and the
// personality routine, even though apps are built with `panic = "abort"` and never
// unwind. Solo5 has no unwinder; these stubs satisfy the link, and reaching one aborts.

/// Never reached (nothing unwinds); aborts if it is.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume(_exception: *mut u8) -> ! {
    crate::Solo5Abort::abort()
}

/// Never called (nothing unwinds); returns `_URC_FATAL_PHASE1_ERROR` if it is.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() -> c_int {
    3
}
