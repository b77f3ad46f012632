//! A roster answered from disk (`crate::roster_lookup::StoreRoster`) hands the matcher the
//! bearers of a name born on given dates exactly as the name's bearers filtered by date: with
//! few bearers (each one's date read) and with many (the dates' postings matched against the
//! name's), within the first `limit` bearers either way.

use crate::roster_net_tests::big_roster;
use crate::roster_serve_tests::on_disk;
use kazashi_domain::CivilDate;
use kazashi_domain::birth::near_dates;
use kazashi_domain::ids::PersonId;
use kazashi_domain::normalize::fold;

#[test]
fn named_born_is_the_name_filtered_by_date_with_few_bearers_or_many() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 bearers of one name, born on the 3rd of a month from 1940 on.
    let roster = big_roster(3000);
    let disk = on_disk(&dir.path().join("roster.db"), &roster);
    let store = disk.store().unwrap();
    let name = fold("佐藤 花子");
    let mut found = 0;
    // Dates that are bearers' own, and dates a typo or a year away from theirs.
    let days = [3, 30, 13, 1];
    let bs = (1938..2022)
        .step_by(5)
        .flat_map(|y| (1..=12).map(move |m| (y, m)))
        .enumerate()
        .filter_map(|(i, (y, m))| CivilDate::new(y, m, days[i % days.len()]).ok());
    for b in bs {
        let mut dates = near_dates(b);
        dates.push(b);
        dates.sort_unstable();
        // 3,000 bearers against about 80 dates: the postings path; 40: each date read.
        for limit in [5000, 40] {
            let want: Vec<PersonId> = store
                .named(&name, limit)
                .into_iter()
                .filter(|e| dates.contains(&e.birth_date))
                .map(|e| e.person)
                .collect();
            let got: Vec<PersonId> = store
                .named_born(&name, &dates, limit)
                .into_iter()
                .map(|e| e.person)
                .collect();
            assert_eq!(got, want, "{b:?}, limit {limit}");
            found += got.len();
        }
    }
    assert!(found > 500, "{found}");
    assert!(store.fault().is_none());
}
