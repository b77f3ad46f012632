use super::*;

#[test]
fn backoff_doubles_to_the_cap_and_restarts_after_a_meeting() {
    let mut b = Backoff::mesh();
    assert_eq!(b.delay(), 250);
    let waits: Vec<u64> = (0..7).map(|_| b.failed()).collect();
    assert_eq!(waits, [500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
    assert_eq!(b.met(), 250);
    for _ in 0..100 {
        b.failed();
    }
    assert_eq!(b.delay(), 5_000);
}

#[test]
fn next_attempt_matches_the_dial_loop_step_by_step() {
    // The naive loop: each failed attempt lasts the timeout, then the wait (no probe), or the
    // next starts a probe gap after it (probing): `next_start` step by step.
    for base in [
        Backoff::new(250, 5_000),
        Backoff::mesh().seeded(7),
        Backoff::mesh().capped(3_000).seeded(u64::MAX),
    ] {
        let naive = |tried: u64, now: u64| {
            let mut b = base;
            let mut at = tried;
            loop {
                at = b.next_start(at);
                if at >= now {
                    return at;
                }
            }
        };
        for now in [
            0,
            1,
            3_500,
            3_501,
            7_000,
            60_000,
            61_234,
            3_600_000,
            86_400_000 + 17,
        ] {
            let mut b = base;
            assert_eq!(
                b.next_attempt(1_000, now + 1_000),
                naive(1_000, now + 1_000),
                "now {now}"
            );
        }
    }
    assert_eq!(Backoff::new(250, 5_000).next_attempt(0, 0), 3_500);
}

/// A peer out of reach for half an hour (a shelter cut off from 0:45 to 1:15): the loop's
/// first attempt after the network returns. Before the probe, the loop sat at one attempt
/// every timeout + cap (8 s): up to 8 s after the heal. Probing, it is within one and a half
/// probe gaps, and the loops of a laptop seeded apart do not all wait alike.
#[test]
fn a_loop_tries_again_soon_after_a_long_outage_ends() {
    let cut = 45 * 60_000;
    let heal = 75 * 60_000;
    let mut waits = Vec::new();
    for seed in 0..64u64 {
        let mut b = Backoff::mesh().probing(PROBE_MS).seeded(seed);
        // The connection dropped at the cut: the first dial after the first wait fails.
        let tried = cut + b.met();
        let next = b.next_attempt(tried, heal);
        assert!(next >= heal);
        let wait = next - heal;
        assert!(
            wait <= PROBE_MS * 3 / 2,
            "seed {seed}: the next attempt came {wait} milliseconds after the heal"
        );
        waits.push(wait);
    }
    waits.sort_unstable();
    waits.dedup();
    assert!(waits.len() > 32, "the jitter spreads the loops: {waits:?}");
    let mean = waits.iter().sum::<u64>() / waits.len() as u64;
    assert!(mean < PROBE_MS, "mean wait {mean} ms");
    // Without the probe, the same loop waits seconds.
    let mut b = Backoff::new(250, 5_000);
    let tried = cut + b.met();
    assert!(b.next_attempt(tried, heal) - heal > PROBE_MS * 3 / 2);
}

#[test]
fn probe_gaps_are_jittered_around_the_probe_and_seeded() {
    let gaps = |seed: u64| {
        let mut b = Backoff::mesh().probing(PROBE_MS).seeded(seed);
        b.met();
        let mut at = 0;
        (0..1_000)
            .map(|_| {
                let next = b.next_start(at);
                let gap = next - at;
                at = next;
                gap
            })
            .collect::<Vec<u64>>()
    };
    let a = gaps(1);
    assert_eq!(a, gaps(1), "the same seed, the same gaps");
    assert_ne!(a, gaps(2));
    // The first gap may be the back-off's (timeout + 500 ms is longer than any probe gap, so
    // every gap is a probe gap).
    assert!(
        a.iter()
            .all(|g| (PROBE_MS / 2..=PROBE_MS * 3 / 2).contains(g))
    );
    let mean = a.iter().sum::<u64>() / a.len() as u64;
    assert!(
        (PROBE_MS - 50..=PROBE_MS + 50).contains(&mean),
        "mean {mean}"
    );
    // A loop that does not probe waits out each timeout.
    let mut b = Backoff::mesh().without_probe();
    assert_eq!(b.next_start(0), DIAL_TIMEOUT_MS + 500);
}

/// A loop that has never met its peer (a fleet forming its mesh, a stale address) backs off
/// without probing; once it has met its peer, it probes.
#[test]
fn a_loop_probes_only_once_it_has_met_its_peer() {
    let mut b = Backoff::mesh().probing(PROBE_MS).seeded(3);
    assert!(!b.probes());
    let mut start = 0;
    for _ in 0..10 {
        let next = b.next_start(start);
        assert!(
            next >= start + DIAL_TIMEOUT_MS,
            "probed before meeting: {start} then {next}"
        );
        start = next;
    }
    b.met();
    assert!(b.probes());
    let next = b.next_start(start);
    assert!(
        next <= start + PROBE_MS * 3 / 2,
        "no probe after meeting: {start} then {next}"
    );
    let mut m = Backoff::mesh();
    m.met();
    assert!(
        !m.probes(),
        "the mesh's loops do not probe (see `Backoff::mesh`)"
    );
}
