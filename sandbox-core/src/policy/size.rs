//! Human sizes: `64M`, `1G`, `512k`, `1048576`.

use crate::error::Error;

/// Parse a size such as `64M`, `1.5G`, `512K`, `4096` (bytes). Suffixes are binary
/// (K = 1024) and case-insensitive; an optional trailing `B`/`iB` is accepted.
pub fn parse_size(s: &str) -> Result<u64, Error> {
    let bad = || {
        Error::policy(format!(
            "invalid size `{s}`: use a number with an optional K, M, G or T suffix, like 64M"
        ))
    };
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix("ib"))
        .unwrap_or(t);
    let t = if t.len() > 1 {
        t.strip_suffix(['B', 'b']).unwrap_or(t)
    } else {
        t
    };
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(bad()),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let bytes = v * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn parses_suffixes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5K").unwrap(), 1536);
        assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_size("2MB").unwrap(), 2 << 20);
    }

    #[test]
    fn rejects_garbage() {
        for s in ["12Q", "", "M", "-1M", "0", "1..2M", "abc", "1 M"] {
            assert!(parse_size(s).is_err(), "{s} should be rejected");
        }
    }
}
