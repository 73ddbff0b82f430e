//! kv's datagram protocol: one UTF-8 request per UDP datagram, one reply datagram.
//!
//! ```text
//! PUT <key> <value>   -> OK              (the value is the rest of the datagram)
//! GET <key>           -> VALUE <value> | NOTFOUND
//! DEL <key>           -> OK | NOTFOUND
//! KEYS                -> KEYS <n> <key> <key> ...
//! GEN                 -> GEN <n>         (the store's generation: see --min-generation)
//! anything else       -> ERR <why>
//! ```
//!
//! A key is 1 to [`MAX_KEY`] bytes without whitespace; a value at most [`MAX_VALUE`] bytes.
//! `OK` to a `PUT` or `DEL` is sent only once the change is flushed to the device.

use alloc::format;
use alloc::string::String;

use unikernel::block::BlockDevice;

use crate::store::Store;

/// Longest key, in bytes.
pub const MAX_KEY: usize = 64;
/// Longest value, in bytes.
pub const MAX_VALUE: usize = 1024;

fn key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY && !key.contains(char::is_whitespace)
}

/// Answers one request datagram.
pub async fn handle<D: BlockDevice>(store: &mut Store<D>, request: &[u8]) -> String {
    let Ok(request) = core::str::from_utf8(request) else { return String::from("ERR the request is not UTF-8") };
    let request = request.trim_end_matches(['\r', '\n']);
    let (verb, rest) = request.split_once(' ').unwrap_or((request, ""));
    match verb {
        "PUT" => {
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            if !key_ok(key) {
                return format!("ERR a key is 1..={MAX_KEY} bytes without whitespace");
            }
            if value.len() > MAX_VALUE {
                return format!("ERR a value is at most {MAX_VALUE} bytes");
            }
            match store.put(key, value).await {
                Ok(()) => String::from("OK"),
                Err(e) => format!("ERR {e}"),
            }
        }
        "GET" if key_ok(rest) => match store.get(rest) {
            Some(value) => format!("VALUE {value}"),
            None => String::from("NOTFOUND"),
        },
        "DEL" if key_ok(rest) => match store.delete(rest).await {
            Ok(true) => String::from("OK"),
            Ok(false) => String::from("NOTFOUND"),
            Err(e) => format!("ERR {e}"),
        },
        "KEYS" if rest.is_empty() => {
            let mut reply = format!("KEYS {}", store.len());
            for key in store.keys() {
                reply.push(' ');
                reply.push_str(key);
            }
            reply
        }
        "GEN" if rest.is_empty() => format!("GEN {}", store.generation()),
        "GET" | "DEL" => format!("ERR a key is 1..={MAX_KEY} bytes without whitespace"),
        _ => String::from("ERR expected PUT <key> <value>, GET <key>, DEL <key>, KEYS or GEN"),
    }
}
