//! Canonical JSON for the layout's documents: object keys sorted at every level, no
//! insignificant whitespace. oci-spec keeps annotations and labels in `HashMap`s, whose
//! order changes from run to run; a digest must not.

use serde::Serialize;
use serde_json::Value;

/// `value` as canonical JSON bytes.
pub fn canonical_json(value: &impl Serialize) -> serde_json::Result<Vec<u8>> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::new();
    write_value(&value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(key)?);
                out.push(b':');
                write_value(&map[key], out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        leaf => out.extend(serde_json::to_vec(leaf)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level_and_arrays_keep_their_order() {
        let value = serde_json::json!({"b": 1, "a": {"z": [3, 1, {"y": "x", "x": "y"}], "c": null}});
        let text = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
        assert_eq!(text, r#"{"a":{"c":null,"z":[3,1,{"x":"y","y":"x"}]},"b":1}"#);
    }

    #[test]
    fn a_hash_map_serialises_the_same_every_time() {
        let map: std::collections::HashMap<String, String> =
            (0..32).map(|i| (format!("key{i}"), format!("value{i}"))).collect();
        let first = canonical_json(&map).unwrap();
        let rebuilt: std::collections::HashMap<String, String> = map.clone().into_iter().collect();
        assert_eq!(first, canonical_json(&rebuilt).unwrap());
    }
}
