//! A smoltcp interface over a [`RingPhy`], with the poll/flush/wait loop apps share.
//!
//! ```ignore
//! let mut stack = Stack::new(open_net("")?, StackConfig::new(cidr));
//! let handle = stack.sockets.add(udp_socket);
//! loop {
//!     stack.poll();                 // move frames between device, stack and sockets
//!     /* use sockets */
//!     stack.send();                 // send what they queued
//!     stack.wait().await;           // sleep until a device event or smoltcp's next timer
//! }
//! ```

use alloc::boxed::Box;
use alloc::vec;

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::time::Instant;
use smoltcp::wire::{IpCidr, Ipv4Address};

use super::phy::RingConfig;
use super::{NetDevice, RingPhy};
use crate::{executor, services};

/// Addresses and buffer sizes for a [`Stack`].
#[derive(Debug, Clone, Copy)]
pub struct StackConfig {
    /// The interface address.
    pub cidr: IpCidr,
    /// The default gateway, if any.
    pub gateway: Option<Ipv4Address>,
    /// Pool and ring sizes.
    pub ring: RingConfig,
}

impl StackConfig {
    /// Defaults for the given address.
    pub fn new(cidr: impl Into<IpCidr>) -> Self {
        StackConfig { cidr: cidr.into(), gateway: None, ring: RingConfig::default() }
    }
}

/// The current monotonic time as smoltcp wants it.
pub fn now() -> Instant {
    Instant::from_micros((services::monotonic_ns() / 1000) as i64)
}

/// A device, an interface and its sockets.
pub struct Stack {
    /// The adapter (counters live here).
    pub phy: RingPhy,
    /// The smoltcp interface.
    pub iface: Interface,
    /// The sockets; add yours here.
    pub sockets: SocketSet<'static>,
}

impl Stack {
    /// Builds the stack; the pool is allocated here, once. An address the platform
    /// assigned to the device ([`NetDevice::assigned_ipv4`]) replaces `config`'s address
    /// and gateway, and a line on the console says so.
    pub fn new(device: Box<dyn NetDevice>, mut config: StackConfig) -> Self {
        if let Some(assigned) = device.assigned_ipv4() {
            crate::println!(
                "net: address {}/{} from the platform (netdev.ip), in place of the app's {}",
                assigned.cidr.address,
                assigned.cidr.prefix_len,
                config.cidr
            );
            config.cidr = assigned.cidr.into();
            config.gateway = assigned.gateway.or(config.gateway);
        }
        let mut phy = RingPhy::new(device, config.ring);
        let mut iface_config = Config::new(phy.hardware_address());
        iface_config.random_seed = services::random_u64();
        let mut iface = Interface::new(iface_config, &mut phy, now());
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(config.cidr);
        });
        if let Some(gw) = config.gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
        }
        Stack { phy, iface, sockets: SocketSet::new(vec![]) }
    }

    /// Processes everything pending and sends what the stack queued.
    pub fn poll(&mut self) {
        self.iface.poll(now(), &mut self.phy, &mut self.sockets);
        self.phy.flush();
    }

    /// Sends what the sockets queued, taking no new frames from the device. Use it after
    /// serving sockets, before waiting: a full [`poll`](Self::poll) there could bring in
    /// data that nothing reads until the next device event.
    pub fn send(&mut self) {
        self.iface.poll_egress(now(), &mut self.phy, &mut self.sockets);
        self.phy.flush();
    }

    /// Waits for a device event or the stack's next timer (at most `max_ms`).
    pub async fn wait_at_most(&mut self, max_ms: u64) {
        let cap = services::monotonic_ns().saturating_add(max_ms.saturating_mul(1_000_000));
        self.wait_until_ns(cap).await
    }

    /// When this stack next needs a [`poll`](Self::poll) even if no device event comes,
    /// in [`services::monotonic_ns`] time: smoltcp's next timer or the device's own
    /// ([`NetDevice::poll_deadline_ns`]), whichever is first; `None` when only a device
    /// event can bring work.
    pub fn poll_deadline_ns(&mut self) -> Option<u64> {
        let stack = self
            .iface
            .poll_delay(now(), &self.sockets)
            .map(|delay| services::monotonic_ns().saturating_add(delay.total_micros() * 1000));
        let device = self.phy.device_deadline_ns();
        match (stack, device) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn wait_until_ns(&mut self, cap: u64) {
        let deadline = self.poll_deadline_ns().map_or(cap, |d| d.min(cap));
        executor::wait_io(Some(deadline)).await;
    }

    /// Waits for a device event or the stack's next timer.
    pub async fn wait(&mut self) {
        self.wait_at_most(60_000).await
    }

    /// Waits for a device event, the stack's next timer or `deadline` (an [`Instant`] of
    /// [`now`]'s clock, such as the one [`ListenerPool::poll`](super::ListenerPool::poll)
    /// returns), whichever comes first; at most 60 s.
    pub async fn wait_until(&mut self, deadline: Option<Instant>) {
        let cap = services::monotonic_ns().saturating_add(60_000_000_000);
        let deadline_ns = deadline.map_or(u64::MAX, |d| (d.total_micros().max(0) as u64).saturating_mul(1000));
        self.wait_until_ns(cap.min(deadline_ns)).await
    }
}
