//! `kazashi demo`: the station app in demo mode. Until the window exists, and wherever no
//! display exists, it runs the demo day headless and prints its report.

use crate::lang::Lang;
use kazashi_domain::event::IdMethod;
use kazashi_domain::roster::CareNeed;
use kazashi_sim::demo::{DemoConfig, DemoReport, run as run_day};
use std::fmt::Write as _;
use unicode_width::UnicodeWidthStr;

/// Pad to a display width (CJK characters take two columns), left- or right-aligned.
fn pad(text: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(text.width()));
    if right {
        format!("{fill}{text}")
    } else {
        format!("{text}{fill}")
    }
}

fn method_label(method: IdMethod, lang: Lang) -> &'static str {
    match method {
        IdMethod::CardTap => lang.t("カード", "card"),
        IdMethod::CardWithPin => lang.t("カード+暗証番号", "card+PIN"),
        IdMethod::AdmissionTicket => lang.t("入場券", "ticket"),
        IdMethod::Lookup => lang.t("検索", "lookup"),
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Run without a window and print the day's report.
    #[arg(long)]
    pub headless: bool,
    /// Walk the window through its key screens by itself, save a PNG of each into this folder,
    /// and close (the screenshots in docs/screens are made this way, under Xvfb).
    #[arg(long, value_name = "DIR", conflicts_with = "headless")]
    pub tour: Option<std::path::PathBuf>,
    /// Seed of the synthetic city and the day.
    #[arg(long, default_value_t = DemoConfig::default().seed)]
    pub seed: u64,
    /// Households in the synthetic city.
    #[arg(long, default_value_t = DemoConfig::default().households)]
    pub households: usize,
    /// Shelters opened (at least 3; the last is a welfare shelter).
    #[arg(long, default_value_t = DemoConfig::default().shelters)]
    pub shelters: usize,
    /// Drill mode: the window's shelter drill follows this scenario (its city, shelters and
    /// arrival curve; peer stations write along it).
    #[arg(long, value_name = "FILE", conflicts_with = "headless")]
    pub scenario: Option<std::path::PathBuf>,
    /// In drill mode, simulated time runs this many times faster than real time.
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
}

impl Default for DemoArgs {
    fn default() -> Self {
        let c = DemoConfig::default();
        Self {
            headless: false,
            tour: None,
            seed: c.seed,
            households: c.households,
            shelters: c.shelters,
            scenario: None,
            speed: 60.0,
        }
    }
}

pub fn run(args: &DemoArgs, lang: Lang) -> Result<(), String> {
    if let Some(dir) = &args.tour {
        return crate::app::run_demo_window(lang, Some(dir.clone()), None);
    }
    let drill = match &args.scenario {
        Some(path) => {
            let sc = kazashi_sim::scenario::Scenario::load(path).map_err(|e| e.to_string())?;
            Some(crate::app::demo::Drill::new(sc, args.speed)?)
        }
        None => None,
    };
    if drill.is_some() {
        return crate::app::run_demo_window(lang, None, drill);
    }
    if !args.headless {
        match crate::app::run_demo_window(lang, None, None) {
            Ok(()) => return Ok(()),
            Err(e) => eprintln!(
                "{e}; {}",
                lang.t(
                    "デモの一日をヘッドレスで実行します。",
                    "running the demo day headless instead."
                )
            ),
        }
    }
    if !(1..=200_000).contains(&args.households) || !(3..=500).contains(&args.shelters) {
        return Err(lang
            .t(
                "世帯数は1〜200000、避難所数は3〜500で指定してください",
                "households must be 1..=200000 and shelters 3..=500",
            )
            .into());
    }
    let report = run_day(DemoConfig {
        seed: args.seed,
        households: args.households,
        shelters: args.shelters,
    })
    .map_err(|e| e.to_string())?;
    {
        use std::io::Write as _;
        // A closed pipe is the reader's choice, not a failure of the demo.
        let _ = std::io::stdout()
            .lock()
            .write_all(render(&report, lang).as_bytes());
    }
    if report.converged {
        Ok(())
    } else {
        Err(lang
            .t(
                "ステーション間で状態が一致しませんでした",
                "stations did not converge",
            )
            .into())
    }
}

/// The report as text. Counts only: no name, address or card data is ever printed.
pub fn render(r: &DemoReport, lang: Lang) -> String {
    let mut s = String::new();
    let l = |ja, en| lang.t(ja, en);
    let _ = writeln!(
        s,
        "== {} ==",
        l("かざし デモ（ヘッドレス）", "Kazashi demo (headless)")
    );
    let _ = writeln!(
        s,
        "{}: {}  {}: {}",
        l("運用", "Deployment"),
        r.deployment,
        l("日付", "Date"),
        r.date
    );
    let _ = writeln!(
        s,
        "{}: {} {} / {} {}",
        l("架空の市の住民", "Synthetic city"),
        r.residents,
        l("人", "residents"),
        r.households,
        l("世帯", "households")
    );
    let _ = writeln!(s, "{}: {}", l("端末数", "Stations"), r.stations);
    let _ = writeln!(s);
    let header = [
        l("在所", "here"),
        l("外出", "out"),
        l("退所", "left"),
        l("世帯", "hh"),
        l("定員", "cap"),
        l("使用率", "use"),
        l("要配慮", "care"),
    ];
    let _ = write!(
        s,
        "{} {}",
        pad(l("ID", "ID"), 5, false),
        pad(l("避難所", "Shelter"), 44, false)
    );
    for h in header {
        let _ = write!(s, " {}", pad(h, 7, true));
    }
    let _ = writeln!(s);
    let (mut present, mut out, mut left, mut care) = (0, 0, 0, 0);
    for site in &r.sites {
        let c = &site.counts;
        let use_pct = if site.capacity > 0 {
            100.0 * f64::from(c.registered()) / f64::from(site.capacity)
        } else {
            0.0
        };
        let name = format!("{}（{}）", site.name, site.type_label);
        let cells = [
            c.present.to_string(),
            c.on_leave.to_string(),
            c.left.to_string(),
            c.households.to_string(),
            site.capacity.to_string(),
            format!("{use_pct:.0}%"),
            c.with_care_needs.to_string(),
        ];
        let _ = write!(
            s,
            "{} {}",
            pad(site.id.as_str(), 5, false),
            pad(&name, 44, false)
        );
        for cell in cells {
            let _ = write!(s, " {}", pad(&cell, 7, true));
        }
        let _ = writeln!(s);
        present += c.present;
        out += c.on_leave;
        left += c.left;
        care += c.with_care_needs;
    }
    let _ = writeln!(
        s,
        "{} {} {} {} {}",
        pad(l("合計", "Total"), 50, false),
        pad(&present.to_string(), 7, true),
        pad(&out.to_string(), 7, true),
        pad(&left.to_string(), 7, true),
        pad(&care.to_string(), 39, true)
    );
    let mut needs = std::collections::BTreeMap::<CareNeed, u32>::new();
    for site in &r.sites {
        for (k, v) in &site.counts.care_needs {
            *needs.entry(*k).or_default() += v;
        }
    }
    let needs_line: Vec<String> = needs
        .iter()
        .map(|(k, v)| {
            format!(
                "{} {v}",
                if lang == Lang::Ja {
                    k.label_ja()
                } else {
                    k.label_en()
                }
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "{}: {}",
        l("要配慮者（延べ）", "Care needs (by category)"),
        needs_line.join(", ")
    );
    let _ = writeln!(s);
    let methods: Vec<String> = r
        .check_ins_by_method
        .iter()
        .map(|(k, v)| format!("{} {v}", method_label(*k, lang)))
        .collect();
    let _ = writeln!(
        s,
        "{}: {}",
        l("受付方法", "Check-ins by method"),
        methods.join(", ")
    );
    let _ = writeln!(
        s,
        "{}: {}  {}: {}  {}: {}",
        l("名簿外の来所者", "Walk-ins"),
        r.walk_ins,
        l("福祉避難所への移送", "Transfers to welfare shelter"),
        r.transfers,
        l("取消", "Undos"),
        r.undos
    );
    let filed: usize = r.sites.iter().map(|x| x.reports_filed).sum();
    let _ = writeln!(s, "{}: {}", l("状況報告", "Status reports filed"), filed);
    if let Some(p) = &r.partition {
        let _ = writeln!(
            s,
            "{} {} ({}): {} {} {}, {} {}, {} {}",
            l("通信断", "Cut off"),
            p.site.as_str(),
            l("15:00 本部の見え方", "HQ's view at 15:00"),
            l("最終受信", "last event"),
            p.minutes_since_last_event,
            l("分前", "min ago"),
            l("本部の在所数", "HQ sees present"),
            p.present_seen_by_hq,
            l("現地の在所数", "site has present"),
            p.present_at_site
        );
    }
    let _ = writeln!(
        s,
        "{}: {}  {}: {}",
        l("イベント数", "Events"),
        r.events,
        l("全端末の状態一致", "All stations converged"),
        if r.converged {
            l("はい", "yes")
        } else {
            l("いいえ", "NO")
        }
    );
    s
}
