//! The network thread: the one owner of the NIC while sockets are in use.
//!
//! It is started by the first `socket()` (posix-socket's `ops->init` runs before devices
//! are probed, so the device cannot be opened earlier). Then, for ever, under the table's
//! lock: poll the stack (receive, run TCP, transmit), look at what changed (a handshake
//! done or refused, a reset, a listener's connection, timeouts, connections finishing
//! their close), recompute every socket's events; then, without the lock, sleep in
//! `rtuk_wait_net` until the device interrupts, an app thread kicks (it queued something to
//! send), or the stack's next timer. Unikraft's scheduler is cooperative: the thread
//! blocks there, or yields when it has work left, so app threads always get to run.

use crate::socket::Errno;
use std::time::Duration;

use shared_core::net::{NetDevice, Stack, StackConfig};
use shared_core::services;
use smoltcp::socket::tcp;
use smoltcp::wire::IpListenEndpoint;

use super::backlog;
use super::config::{self, Source};
use super::loopback::{Loopback, LOOPBACK};
use super::readiness::{self, acceptable};
use super::table::{deadline_after, lock, Kind, Net, Tcp, RESET_SENT};
use crate::glue;
use shared_core::services::OpenError;
use smoltcp::wire::IpCidr;

/// The longest sleep with nothing scheduled.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// Set when the network thread could not be started: every later `socket()` fails.
static THREAD_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the socket layer opened the net device (for the message an app gets when it
/// also opens it through shared-core's `services::open_net`).
pub static OWNS_NIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Starts the socket layer in `slot` if it is not running: opens the net device, builds
/// the stack and spawns the network thread. `-ENETDOWN` (with the reason on the console,
/// once) when the device cannot be had.
pub fn start(slot: &mut Option<Net>) -> Result<&mut Net, Errno> {
    if THREAD_FAILED.load(std::sync::atomic::Ordering::SeqCst) {
        // A table with no thread to drive it would take sockets whose ops never end.
        return Err(Errno::ENETDOWN);
    }
    if slot.is_none() {
        match build() {
            Ok(net) => {
                *slot = Some(net);
                if let Err(e) = std::thread::Builder::new().name("rt-unikraft-net".into()).spawn(run) {
                    std::eprintln!(
                        "rt-unikraft sockets: cannot start the network thread: {e}; every socket call fails from now on"
                    );
                    THREAD_FAILED.store(true, std::sync::atomic::Ordering::SeqCst);
                    *slot = None;
                    return Err(Errno::ENETDOWN);
                }
            }
            Err(why) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| std::eprintln!("rt-unikraft sockets: no network: {why}"));
                return Err(Errno::ENETDOWN);
            }
        }
    }
    Ok(slot.as_mut().expect("set above"))
}

fn build() -> Result<Net, String> {
    write_etc_hosts();
    let nic = match crate::net::UkNet::open_for_sockets(0) {
        Ok(nic) => nic,
        Err(OpenError::NotFound(why)) => {
            std::println!("rt-unikraft sockets: loopback only (127.0.0.1): {why}");
            let mut stack = Stack::new(
                std::boxed::Box::new(Loopback::<crate::net::UkNet>::new(None)),
                StackConfig::new(IpCidr::new(LOOPBACK.into(), 8)),
            );
            stack.iface.routes_mut().remove_default_ipv4_route();
            return Ok(Net::new(stack));
        }
        Err(e) => return Err(e.to_string()),
    };
    let platform = nic.assigned_ipv4();
    let mut device = Loopback::new(Some(nic));
    let env = |name| std::env::var(name).ok();
    let (assignment, source) = config::choose(env(config::ENV_IPV4).as_deref(), env(config::ENV_GATEWAY).as_deref())?;
    let mut stack_config = StackConfig::new(assignment.cidr);
    stack_config.gateway = assignment.gateway;
    OWNS_NIC.store(true, std::sync::atomic::Ordering::SeqCst);
    device.set_own_address(platform.map_or(assignment.cidr.address, |p| p.cidr.address));
    let mut stack = Stack::new(std::boxed::Box::new(device), stack_config);
    stack.iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(LOOPBACK.into(), 8));
    });
    let net = Net::new(stack);
    let gateway_addr = platform.map_or(assignment.gateway, |p| p.gateway.or(assignment.gateway));
    let gateway = gateway_addr.map_or("none".into(), |g| g.to_string());
    let from = match (platform.is_some(), source) {
        (true, _) => "from netdev.ip",
        (false, Source::Environment) => "from RT_UNIKRAFT_IPV4",
        (false, Source::Default) => "the default; set netdev.ip= or RT_UNIKRAFT_IPV4",
    };
    let dns = config::choose_dns(platform.and_then(|p| p.dns), env(config::ENV_DNS).as_deref(), gateway_addr)?;
    let dns = match dns {
        Some((dns, why)) => format!(", DNS {dns} ({})", write_resolv_conf(dns, why)),
        None => ", no DNS server".to_string(),
    };
    std::println!(
        "rt-unikraft sockets: IPv4 {}/{}, gateway {gateway}{dns} ({from})",
        net.address,
        net.stack.iface.ip_addrs().first().map_or(0, |c| c.prefix_len())
    );
    Ok(net)
}

/// Writes `/etc/hosts` with `localhost` for musl's resolver (std's `ToSocketAddrs` on
/// "localhost:port"), unless the app's filesystem has one.
fn write_etc_hosts() {
    let path = std::path::Path::new("/etc/hosts");
    if !path.exists() {
        let _ = std::fs::create_dir_all("/etc").and_then(|()| std::fs::write(path, "127.0.0.1\tlocalhost\n"));
    }
}

/// Writes `/etc/resolv.conf` for musl's resolver, unless the app's filesystem has one;
/// says what happened, for the console line.
fn write_resolv_conf(dns: smoltcp::wire::Ipv4Address, why: &str) -> String {
    let path = std::path::Path::new("/etc/resolv.conf");
    if path.exists() {
        return "the app's /etc/resolv.conf is kept".into();
    }
    let written = std::fs::create_dir_all("/etc").and_then(|()| std::fs::write(path, config::resolv_conf(dns)));
    match written {
        Ok(()) => format!("{why}, in /etc/resolv.conf"),
        Err(e) => format!("{why}; /etc/resolv.conf could not be written: {e}"),
    }
}

/// The network thread's loop (see the module docs).
fn run() {
    loop {
        let wait = {
            let mut guard = lock();
            let net = guard.as_mut().expect("the thread starts after the table");
            net.stack.poll();
            let now = services::monotonic_ns();
            maintain(net, now);
            // What `maintain` queued (a reset, a re-listen) goes out now.
            net.stack.send();
            readiness::refresh_all(net);
            next_wait(net, now)
        };
        // This loop is where a std app with sockets idles (its own threads block in
        // posix-socket, never in `services::wait_until`): the wait hook (heap samples)
        // gets its turn here too, and may pull the wake-up in.
        let now = services::monotonic_ns();
        let wait = services::before_idle_wait(Some(now.saturating_add(wait))).map_or(wait, |d| d.saturating_sub(now));
        if wait == 0 {
            std::thread::yield_now();
        } else {
            // SAFETY: plain call; blocks this thread only.
            unsafe { glue::rtuk_wait_net(wait) };
        }
    }
}

/// Looks at every socket after a poll: handshakes done or failed, resets, listeners'
/// backlog, expired deadlines, closing connections.
pub fn maintain(net: &mut Net, now: u64) {
    let mut top_up = std::vec::Vec::new();
    let sockets = &mut net.stack.sockets;
    for (id, sock) in net.socks.iter_mut() {
        match &mut sock.kind {
            Kind::Tcp(Tcp::Listening(listener)) => {
                let missing = backlog::maintain(sockets, listener, listen_endpoint(sock.local), now);
                if missing > 0 {
                    top_up.push((*id, missing));
                }
            }
            Kind::Tcp(Tcp::Stream(stream)) => {
                let socket = sockets.get_mut::<tcp::Socket>(stream.handle);
                let state = socket.state();
                if let Some(deadline) = stream.connecting {
                    if acceptable(state) || matches!(state, tcp::State::FinWait1 | tcp::State::FinWait2) {
                        stream.connecting = None;
                    } else if state == tcp::State::Closed {
                        stream.connecting = None;
                        stream.broken = true;
                        sock.error = Some(Errno::ECONNREFUSED);
                    } else if now >= deadline {
                        socket.abort();
                        stream.connecting = None;
                        stream.broken = true;
                        sock.error = Some(Errno::ETIMEDOUT);
                    }
                } else if !stream.broken && state == tcp::State::Closed {
                    use tcp::State::*;
                    // An orderly close passes through LAST-ACK or TIME-WAIT; from any
                    // other state, Closed means a reset (or smoltcp gave up on the peer).
                    if matches!(stream.last_state, SynReceived | Established | FinWait1 | FinWait2 | CloseWait) {
                        stream.broken = true;
                        sock.error = Some(Errno::ECONNRESET);
                    }
                }
                stream.last_state = socket.state();
            }
            Kind::Udp(udp) => super::udp::drain_pending(sockets, udp),
            _ => {}
        }
        if sock.recv_deadline.is_some_and(|d| now >= d) {
            sock.recv_deadline = None;
            sock.recv_timed_out = true;
        }
        if sock.send_deadline.is_some_and(|d| now >= d) {
            sock.send_deadline = None;
            sock.send_timed_out = true;
        }
    }
    for (id, missing) in top_up {
        let Some(sock) = net.socks.get(&id) else { continue };
        let (local, opts) = (sock.local, sock.opts);
        let mut added = std::vec::Vec::new();
        for _ in 0..missing {
            let handle = net.new_tcp(&opts);
            if net.stack.sockets.get_mut::<tcp::Socket>(handle).listen(listen_endpoint(local)).is_err() {
                net.stack.sockets.remove(handle);
                break;
            }
            added.push(handle);
        }
        if let Some(Kind::Tcp(Tcp::Listening(listener))) = net.socks.get_mut(&id).map(|s| &mut s.kind) {
            listener.sockets.extend(added);
        }
    }
    let sockets = &mut net.stack.sockets;
    net.orphans.retain_mut(|orphan| {
        let socket = sockets.get_mut::<tcp::Socket>(orphan.handle);
        if matches!(socket.state(), tcp::State::Closed | tcp::State::TimeWait) {
            sockets.remove(orphan.handle);
            return false;
        }
        if now >= orphan.deadline {
            // Reset now; it is dropped next time, after the reset went out.
            socket.abort();
            orphan.deadline = RESET_SENT;
        }
        true
    });
}

/// Where a listener's sockets listen: its bound address (any when `0.0.0.0`) and port.
pub fn listen_endpoint(local: Option<(smoltcp::wire::Ipv4Address, u16)>) -> IpListenEndpoint {
    let (addr, port) = local.unwrap_or((smoltcp::wire::Ipv4Address::UNSPECIFIED, 0));
    IpListenEndpoint { addr: (!addr.is_unspecified()).then_some(addr.into()), port }
}

/// Nanoseconds until the stack's next timer or the next socket deadline, at most
/// [`IDLE_WAIT`].
fn next_wait(net: &mut Net, now: u64) -> u64 {
    let mut until = deadline_after(now, IDLE_WAIT);
    if let Some(delay) = net.stack.iface.poll_delay(shared_core::net::stack::now(), &net.stack.sockets) {
        until = until.min(now.saturating_add(delay.total_micros().saturating_mul(1000)));
    }
    for sock in net.socks.values() {
        for deadline in [sock.recv_deadline, sock.send_deadline].into_iter().flatten() {
            until = until.min(deadline);
        }
        if let Kind::Tcp(Tcp::Listening(listener)) = &sock.kind {
            for &since in listener.half_open.values() {
                until = until.min(deadline_after(since, super::table::SYN_RECEIVED_TIMEOUT));
            }
        }
        if let Kind::Tcp(Tcp::Stream(stream)) = &sock.kind {
            if let Some(deadline) = stream.connecting {
                until = until.min(deadline);
            }
        }
    }
    for orphan in &net.orphans {
        until = until.min(orphan.deadline);
    }
    if let Some(device) = net.stack.phy.device_deadline_ns() {
        // Frames sent to ourselves wait to be received (see `loopback`).
        until = until.min(device);
    }
    until.saturating_sub(now)
}

/// Wakes the network thread: an app thread queued something to send, or freed room.
pub fn kick() {
    // SAFETY: plain call, safe from any context.
    unsafe { glue::rtuk_kick() };
}
