//! Human-readable durations, sizes, counts and names, shared by every front end.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::model::Nanos;

/// `name` safe to print on a terminal: control characters (C0 such as ESC, BEL, CR, LF, TAB;
/// DEL; C1) and the invisible bidirectional / zero-width formatting characters are shown as
/// escapes (`\u{1b}`, `\n`, `\t`), so a name from a trace can neither drive the terminal
/// (set its title, clear the screen) nor forge a line of output. Borrowed when nothing needs
/// escaping, which is almost always.
pub fn printable(name: &str) -> Cow<'_, str> {
    if !name.chars().any(is_unprintable) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_unprintable(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// What [`printable`] escapes: control characters, and formatting that is invisible but
/// reorders or hides text.
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        // Zero-width and bidirectional formatting (Unicode "Trojan Source", CVE-2021-42574).
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `1.23 s`, `45.6 ms`, `789 µs`, `12 ns`: three significant digits.
pub fn format_duration(ns: Nanos) -> String {
    let ns_f = ns as f64;
    let (value, unit) = if ns >= 60_000_000_000 {
        let secs = ns / 1_000_000_000;
        return format!("{}m{:02}s", secs / 60, secs % 60);
    } else if ns >= 1_000_000_000 {
        (ns_f / 1e9, "s")
    } else if ns >= 1_000_000 {
        (ns_f / 1e6, "ms")
    } else if ns >= 1_000 {
        (ns_f / 1e3, "µs")
    } else {
        return format!("{ns} ns");
    };
    format!("{} {unit}", three_digits(value))
}

/// `512 B`, `1.50 KiB`, `23.4 MiB`, `1.00 GiB` (binary units, as Dask prints them).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", three_digits(value), UNITS[unit])
}

/// `1,234,567`.
pub fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and its noun, plural unless `n` is 1: `1 key`, `2 keys`, `1,024 attempts`.
pub fn counted(n: u64, noun: &str) -> String {
    format!(
        "{} {noun}{}",
        format_count(n),
        if n == 1 { "" } else { "s" }
    )
}

fn three_digits(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Parses a size such as `2GiB`, `512 MB`, `1.5GB`, `4096` (bytes). Decimal (`kB`, `MB`, `GB`,
/// `TB`) and binary (`KiB`, `MiB`, `GiB`, `TiB`) units, case-insensitive, as Dask's
/// `parse_bytes` accepts them.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let invalid = || {
        format!(
            "invalid size {text:?}: expected a number with an optional unit \
             (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GiB"
        )
    };
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(invalid()),
    };
    let bytes = (value * multiplier).round();
    // 2^64 is exactly representable; anything at or above it would be clamped silently.
    if bytes >= 18_446_744_073_709_551_616.0 {
        return Err(format!("invalid size {text:?}: more than 16 EiB"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(format_duration(12), "12 ns");
        assert_eq!(format_duration(1_500), "1.50 µs");
        assert_eq!(format_duration(45_600_000), "45.6 ms");
        assert_eq!(format_duration(1_234_000_000), "1.23 s");
        assert_eq!(format_duration(125_000_000_000), "2m05s");
    }

    #[test]
    fn sizes() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.50 KiB");
        assert_eq!(format_bytes(24_087_052), "23.0 MiB");
        assert_eq!(format_bytes(1 << 30), "1.00 GiB");
        assert_eq!(format_count(1_234_567), "1,234,567");
        assert_eq!(format_count(999), "999");
    }

    #[test]
    fn printable_escapes_terminal_controls() {
        assert!(matches!(printable("read-parquet µ"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\x1b]0;pwned\x07\x1b[2J\tb\r\nc\u{9b}d\u{7f}"),
            "a\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\tb\\r\\nc\\u{9b}d\\u{7f}"
        );
        assert_eq!(printable("x\u{202e}y"), "x\\u{202e}y");
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("1.5 GB"), Ok(1_500_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("100mb"), Ok(100_000_000));
        assert_eq!(
            parse_bytes("2 gigs"),
            Err(
                "invalid size \"2 gigs\": expected a number with an optional unit \
                 (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GiB"
                    .to_string()
            )
        );
        assert!(parse_bytes("GiB").is_err());
        assert_eq!(
            parse_bytes("20000000TiB"),
            Err("invalid size \"20000000TiB\": more than 16 EiB".to_string())
        );
    }
}
