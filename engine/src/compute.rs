//! What a task really does: read its inputs, burn CPU, allocate its working memory, and produce
//! a result buffer whose content is a function of its key and inputs, so a value can be checked
//! after it was transferred, spilled and read back.

use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use bytes::Bytes;
use traces::Key;

use crate::graph::Work;

/// Checksum of a value: every byte is read.
pub fn checksum(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    let mut acc: u64 = 0xcbf2_9ce4_8422_2325 ^ data.len() as u64;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        acc = (acc ^ word)
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(5);
    }
    for &b in chunks.remainder() {
        acc = (acc ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    acc
}

/// The seed a task's output is generated from: its key and its inputs' checksums.
pub fn output_seed(key: &Key, inputs: &[Bytes]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    for input in inputs {
        checksum(input).hash(&mut hasher);
    }
    hasher.finish()
}

/// The output a task with this seed produces: `len` bytes of xorshift64* from `seed`.
pub fn generate_output(seed: u64, len: usize) -> Bytes {
    if len == 0 {
        return Bytes::new();
    }
    let mut out = vec![0u8; len];
    let mut x = seed | 1;
    let mut chunks = out.chunks_exact_mut(8);
    for chunk in &mut chunks {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        chunk.copy_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    for b in chunks.into_remainder() {
        x ^= x >> 12;
        *b = x as u8;
    }
    Bytes::from(out)
}

/// Runs a task. `attempt` counts from 1 (failures configured for the first N attempts). With
/// `sleep`, its compute time is waited out instead of burnt.
pub(crate) fn run(
    key: &Key,
    work: &Work,
    inputs: &[Bytes],
    attempt: u32,
    sleep: bool,
) -> Result<Bytes, String> {
    let extra = work.extra();
    // Working memory is really allocated and touched, so it is really used.
    let working = work.working_bytes_at(attempt) as usize;
    let scratch = if working > 0 {
        vec![1u8; working]
    } else {
        Vec::new()
    };
    let seed = if inputs.is_empty() && work.output_bytes == 0 && work.compute_ns == 0 {
        0 // A no-op: skip hashing the key.
    } else {
        output_seed(key, inputs)
    };
    if work.compute_ns > 0 {
        if sleep {
            std::thread::sleep(Duration::from_nanos(work.compute_ns));
        } else {
            burn(seed, Duration::from_nanos(work.compute_ns));
        }
    }
    if let Some((message, attempts)) = extra.and_then(|e| e.fail.as_ref())
        && attempt <= *attempts
    {
        return Err(message.clone());
    }
    let output = generate_output(seed, work.output_bytes as usize);
    std::hint::black_box(&scratch);
    Ok(output)
}

/// A CPU loop (integer mixing) until it has used `duration` of CPU: on a core it shares, it
/// takes longer, as real CPU-bound work does (and a replay's shared cores predict). The
/// thread's CPU clock is a system call, so it is read only when the wall clock says the time
/// could be up: never before `duration`, then after as long again as the CPU time missing.
fn burn(seed: u64, duration: Duration) {
    let cpu_start = thread_cpu_ns();
    let mut deadline = Instant::now() + duration;
    let mut x = seed | 1;
    loop {
        for _ in 0..64 {
            x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x85eb_ca6b;
        }
        if Instant::now() < deadline {
            continue;
        }
        let used = match (cpu_start, thread_cpu_ns()) {
            (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
            // No CPU clock: wall time it is.
            _ => break,
        };
        match duration.checked_sub(used) {
            Some(missing) if !missing.is_zero() => deadline = Instant::now() + missing,
            _ => break,
        }
    }
    std::hint::black_box(x);
}

/// CPU time the calling thread has used, in nanoseconds.
pub(crate) fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_deterministic_and_sized() {
        let key = Key::from("x-1");
        let a = run(&key, &Work::new(0, 1000), &[], 1, false).unwrap();
        let b = run(&key, &Work::new(10_000, 1000), &[], 1, true).unwrap();
        assert_eq!(a.len(), 1000);
        assert_eq!(a, b);
        let other = run(&Key::from("x-2"), &Work::new(0, 1000), &[], 1, false).unwrap();
        assert_ne!(a, other);
        let with_input = run(
            &key,
            &Work::new(0, 1000),
            std::slice::from_ref(&a),
            1,
            false,
        )
        .unwrap();
        assert_ne!(a, with_input);
    }

    /// CPU time of the calling thread.
    fn thread_cpu() -> Duration {
        Duration::from_nanos(thread_cpu_ns().unwrap())
    }

    #[test]
    fn burning_compute_uses_its_time_on_the_cpu() {
        let before = thread_cpu();
        run(&Key::from("b-1"), &Work::new(50_000_000, 8), &[], 1, false).unwrap();
        // However loaded the machine: 50 ms of CPU, not of wall time.
        assert!(thread_cpu() - before >= Duration::from_millis(50));
    }

    #[test]
    fn sleeping_compute_waits_without_using_the_cpu() {
        let before = thread_cpu();
        run(&Key::from("s-1"), &Work::new(200_000_000, 8), &[], 1, true).unwrap();
        // 200 ms waited; a burning task would have used (nearly) all of it.
        assert!(thread_cpu() - before < Duration::from_millis(20));
    }

    #[test]
    fn configured_failures() {
        let work = Work::new(0, 8).fail("boom", 2);
        let key = Key::from("f");
        assert_eq!(run(&key, &work, &[], 1, false), Err("boom".to_string()));
        assert_eq!(run(&key, &work, &[], 2, false), Err("boom".to_string()));
        assert!(run(&key, &work, &[], 3, false).is_ok());
    }
}
