//! Property tests of the boot-argument parser: whatever a boot line holds, parsing and
//! asking for typed keys gives a value or an error, never a panic; a host address the
//! parser accepts never makes smoltcp panic (the `--ipv4=255.255.255.255/32` bug); bytes
//! become arguments only when they are UTF-8; and quoting survives the command line.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use shared_core::bootargs::{args_from_bytes, quote_arg, split_cmdline, ArgError, BootArgs, FromArg, Ipv4Cidr};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};

fn config() -> Config {
    // Bounded for CI, the same cases on every run, and no regression files written into
    // the repository.
    Config { cases: 512, failure_persistence: None, rng_seed: RngSeed::Fixed(0x0b00_7a26), ..Config::default() }
}

/// An argument: anything at all, or shapes close to real ones (so typed parsing is
/// reached often).
fn argument() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "--[a-z=-]{0,8}(=[ -~]{0,16})?",
        "--(ipv4|port|verbose|name|gw|count)(=[0-9./a-z-]{0,20})?",
        "--ipv4=[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}/[0-9]{1,2}",
        "--port=[+-]?[0-9]{0,7}",
    ]
}

fn ask_everything(args: &mut BootArgs) -> Vec<Result<String, ArgError>> {
    vec![
        args.required::<Ipv4Cidr>("ipv4", "address").map(|v| format!("{v:?}")),
        args.optional::<u16>("port", 80, "port").map(|v| v.to_string()),
        args.flag("verbose", "chatty").map(|v| v.to_string()),
        args.optional::<String>("name", String::new(), "name"),
        args.optional::<Ipv4Address>("gw", Ipv4Address::UNSPECIFIED, "gateway").map(|v| v.to_string()),
        args.optional::<u64>("count", 0, "count").map(|v| v.to_string()),
        args.finish().map(|()| String::new()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_argument_vector_gives_values_or_errors(argv in prop::collection::vec(argument(), 0..8)) {
        match BootArgs::parse(&argv) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(mut args) => {
                for result in ask_everything(&mut args) {
                    if let Err(e) = result {
                        prop_assert!(!e.to_string().is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn an_accepted_host_address_configures_smoltcp(bits in any::<u32>(), prefix in 0u8..=40) {
        let value = format!("{}/{prefix}", Ipv4Address::from_bits(bits));
        let mut args = BootArgs::parse([format!("--ipv4={value}")]).unwrap();
        let Ok(cidr) = args.required::<Ipv4Cidr>("ipv4", "address") else { return Ok(()) };
        prop_assert!(cidr.host_problem().is_none() && cidr.unusable().is_none());
        let mut device = Loopback::new(Medium::Ethernet);
        let hw = HardwareAddress::Ethernet(EthernetAddress([0x02, 0, 0, 0, 0, 1]));
        let mut iface = Interface::new(IfaceConfig::new(hw), &mut device, Instant::ZERO);
        // smoltcp panics here on a broadcast or multicast address.
        iface.update_ip_addrs(|addrs| addrs.push(IpCidr::from(cidr)).unwrap());
        iface.poll(Instant::from_millis(1), &mut device, &mut SocketSet::new(vec![]));
    }

    #[test]
    fn bytes_are_arguments_exactly_when_they_are_utf8(raw in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..6)) {
        let first_bad = raw.iter().position(|a| std::str::from_utf8(a).is_err());
        match (args_from_bytes(&raw), first_bad) {
            (Ok(args), None) => prop_assert_eq!(args.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>(), raw),
            (Err(ArgError::NotUtf8 { position, lossy }), Some(i)) => {
                prop_assert_eq!(position, i + 1);
                prop_assert_eq!(lossy, String::from_utf8_lossy(&raw[i]).into_owned());
            }
            (other, _) => prop_assert!(false, "{other:?} for {raw:?}"),
        }
    }

    #[test]
    fn any_command_line_splits_or_is_refused(line in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Err(e) = split_cmdline(&line) {
            prop_assert!(matches!(e, ArgError::BadCommandLine(_)));
        }
    }

    #[test]
    fn quoted_arguments_come_back_whole(argv in prop::collection::vec(any::<String>(), 0..6)) {
        let line: Vec<String> = argv.iter().map(|a| quote_arg(a)).collect();
        let split = split_cmdline(line.join(" ").as_bytes()).unwrap();
        prop_assert_eq!(split, argv.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>());
    }
}
