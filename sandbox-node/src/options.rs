//! The `new Sandbox({...})` options: camelCase names for the fields of
//! [`stockade::PolicyFile`] (the CLI's and the TOML file's policy), so parsing
//! and validation stay in the core. Only the names and JS types are checked
//! here; an unknown key is an error, never ignored.

use serde_json::{Map, Value};
use stockade::{Error, PolicyFile};

/// Every option `new Sandbox()` accepts (kept in step with `index.d.ts`).
pub const SANDBOX_KEYS: &[&str] = &[
    "net",
    "ro",
    "rw",
    "overlay",
    "tmpfs",
    "allowDomain",
    "denyDomain",
    "allowPrivate",
    "resolve",
    "memory",
    "pids",
    "cpu",
    "timeoutMs",
    "env",
    "passEnv",
    "cwd",
    "hostname",
    "uid",
    "gid",
    "tmpSize",
    "syscallsAllow",
    "syscallsDeny",
    "loopbackTcp",
    "allowNoLandlock",
];

fn policy(msg: String) -> Error {
    Error::Policy(msg)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string(key: &str, v: &Value) -> Result<String, Error> {
    v.as_str().map(str::to_owned).ok_or_else(|| {
        policy(format!(
            "option `{key}` must be a string, got {}",
            type_name(v)
        ))
    })
}

fn strings(key: &str, v: &Value) -> Result<Vec<String>, Error> {
    let Value::Array(items) = v else {
        return Err(policy(format!(
            "option `{key}` must be an array of strings, got {}",
            type_name(v)
        )));
    };
    items
        .iter()
        .map(|i| {
            i.as_str().map(str::to_owned).ok_or_else(|| {
                policy(format!(
                    "option `{key}` must be an array of strings, found {}",
                    type_name(i)
                ))
            })
        })
        .collect()
}

fn boolean(key: &str, v: &Value) -> Result<bool, Error> {
    v.as_bool().ok_or_else(|| {
        policy(format!(
            "option `{key}` must be a boolean, got {}",
            type_name(v)
        ))
    })
}

fn integer(key: &str, v: &Value) -> Result<u64, Error> {
    v.as_u64().ok_or_else(|| {
        policy(format!(
            "option `{key}` must be a non-negative integer, got {v}"
        ))
    })
}

fn uint32(key: &str, v: &Value) -> Result<u32, Error> {
    u32::try_from(integer(key, v)?)
        .map_err(|_| policy(format!("option `{key}` is out of range: {v}")))
}

fn number(key: &str, v: &Value) -> Result<f64, Error> {
    v.as_f64().ok_or_else(|| {
        policy(format!(
            "option `{key}` must be a number, got {}",
            type_name(v)
        ))
    })
}

/// A size like `"512M"`, or a number of bytes.
fn size(key: &str, v: &Value) -> Result<String, Error> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if n.as_u64().is_some() => Ok(n.to_string()),
        _ => Err(policy(format!(
            "option `{key}` must be a size string like \"512M\" or a number of bytes, got {v}"
        ))),
    }
}

/// `K=V` pairs from a `{K: "V"}` object.
pub fn env_pairs(key: &str, v: &Value) -> Result<Vec<(String, String)>, Error> {
    let Value::Object(map) = v else {
        return Err(policy(format!(
            "option `{key}` must be an object of strings, got {}",
            type_name(v)
        )));
    };
    map.iter()
        .map(|(k, v)| {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(policy(format!("invalid environment variable name `{k}`")));
            }
            let v = v.as_str().ok_or_else(|| {
                policy(format!(
                    "option `{key}`: the value of `{k}` must be a string, got {}",
                    type_name(v)
                ))
            })?;
            Ok((k.clone(), v.to_owned()))
        })
        .collect()
}

/// Build the core's policy from the options object (as JSON text).
pub fn policy_file(json: &str) -> Result<PolicyFile, Error> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| policy(format!("options are not a plain object: {e}")))?;
    let map: Map<String, Value> = match value {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(policy(format!(
                "options must be an object, got {}",
                type_name(&other)
            )))
        }
    };
    let mut pf = PolicyFile::default();
    for (key, v) in &map {
        // `null` means "not set", like a missing key.
        if v.is_null() {
            if !SANDBOX_KEYS.contains(&key.as_str()) {
                return Err(unknown(key));
            }
            continue;
        }
        let k = key.as_str();
        match k {
            "net" => pf.net = Some(string(k, v)?),
            "ro" => pf.ro = strings(k, v)?,
            "rw" => pf.rw = strings(k, v)?,
            "overlay" => pf.overlay = strings(k, v)?,
            "tmpfs" => pf.tmpfs = strings(k, v)?,
            "allowDomain" => pf.allow_domain = strings(k, v)?,
            "denyDomain" => pf.deny_domain = strings(k, v)?,
            "allowPrivate" => pf.allow_private = strings(k, v)?,
            "resolve" => pf.resolve = strings(k, v)?,
            "memory" => pf.memory = Some(size(k, v)?),
            "pids" => pf.pids = Some(integer(k, v)?),
            "cpu" => pf.cpu = Some(number(k, v)?),
            "timeoutMs" => pf.timeout = Some(number(k, v)? / 1000.0),
            "env" => {
                for (name, value) in env_pairs(k, v)? {
                    pf.env.push(format!("{name}={value}"));
                }
            }
            "passEnv" => pf.pass_env = strings(k, v)?,
            "cwd" => pf.cwd = Some(string(k, v)?.into()),
            "hostname" => pf.hostname = Some(string(k, v)?),
            "uid" => pf.uid = Some(uint32(k, v)?),
            "gid" => pf.gid = Some(uint32(k, v)?),
            "tmpSize" => pf.tmp_size = Some(size(k, v)?),
            "syscallsAllow" => pf.syscalls_allow = strings(k, v)?,
            "syscallsDeny" => pf.syscalls_deny = strings(k, v)?,
            "loopbackTcp" => pf.loopback_tcp = Some(boolean(k, v)?),
            "allowNoLandlock" => pf.allow_no_landlock = Some(boolean(k, v)?),
            _ => return Err(unknown(key)),
        }
    }
    Ok(pf)
}

fn unknown(key: &str) -> Error {
    policy(format!(
        "unknown option `{key}` (known options: {})",
        SANDBOX_KEYS.join(", ")
    ))
}
