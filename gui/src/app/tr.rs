//! The window's strings through Fluent (`gui/i18n/*.ftl`, embedded): Japanese first, English
//! switchable. Views ask for a message id, never write a literal.

use crate::lang::Lang;
use fluent_bundle::{FluentArgs, FluentBundle, FluentResource, FluentValue};

const JA: &str = include_str!("../../i18n/ja.ftl");
const EN: &str = include_str!("../../i18n/en.ftl");
/// Duplicate resolution and event kinds (`resolve.rs`), a second resource of each bundle.
const JA_RESOLVE: &str = include_str!("../../i18n/resolve.ja.ftl");
const EN_RESOLVE: &str = include_str!("../../i18n/resolve.en.ftl");
/// Paper copies and printing (`paper_view.rs`).
const JA_PAPER: &str = include_str!("../../i18n/paper.ja.ftl");
const EN_PAPER: &str = include_str!("../../i18n/paper.en.ftl");
/// Cards and wristbands as tokens (`token.rs`).
const JA_TOKEN: &str = include_str!("../../i18n/token.ja.ftl");
const EN_TOKEN: &str = include_str!("../../i18n/token.en.ftl");
/// This laptop's clock and Wi-Fi (`system_view.rs`).
const JA_SYSTEM: &str = include_str!("../../i18n/system.ja.ftl");
const EN_SYSTEM: &str = include_str!("../../i18n/system.en.ftl");

pub struct Tr {
    lang: Lang,
    bundle: FluentBundle<FluentResource>,
}

impl Tr {
    pub fn new(lang: Lang) -> Result<Self, String> {
        let (srcs, id) = match lang {
            Lang::Ja => (
                [JA, JA_RESOLVE, JA_PAPER, JA_TOKEN, JA_SYSTEM],
                unic_langid::langid!("ja"),
            ),
            Lang::En => (
                [EN, EN_RESOLVE, EN_PAPER, EN_TOKEN, EN_SYSTEM],
                unic_langid::langid!("en"),
            ),
        };
        let mut bundle = FluentBundle::new(vec![id.clone()]);
        // No Unicode isolation marks around arguments: labels stay plain text.
        bundle.set_use_isolating(false);
        for src in srcs {
            let res = FluentResource::try_new(src.to_owned())
                .map_err(|(_, e)| format!("the {id} strings do not parse: {e:?}"))?;
            bundle
                .add_resource(res)
                .map_err(|e| format!("the strings repeat an id: {e:?}"))?;
        }
        Ok(Tr { lang, bundle })
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The message `id`; a missing one shows as `[id]` (a test keeps the files complete).
    pub fn t(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// The message `id` with arguments.
    pub fn t_with(&self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let mut a = FluentArgs::new();
        for (k, v) in args {
            a.set(*k, v.clone());
        }
        self.format(id, Some(&a))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        let Some(pattern) = self.bundle.get_message(id).and_then(|m| m.value()) else {
            return format!("[{id}]");
        };
        let mut errors = Vec::new();
        self.bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The message ids of an FTL source.
    fn ids(src: &str) -> Vec<String> {
        src.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with(' ') && l.contains(" = "))
            .filter_map(|l| l.split(" = ").next().map(|s| s.trim().to_owned()))
            .collect()
    }

    #[test]
    fn both_languages_have_every_message() {
        let (mut ja, mut en) = (ids(JA), ids(EN));
        ja.extend(ids(JA_RESOLVE));
        en.extend(ids(EN_RESOLVE));
        ja.extend(ids(JA_PAPER));
        en.extend(ids(EN_PAPER));
        ja.extend(ids(JA_TOKEN));
        en.extend(ids(EN_TOKEN));
        ja.extend(ids(JA_SYSTEM));
        en.extend(ids(EN_SYSTEM));
        assert!(ja.len() > 10);
        assert_eq!(
            ja, en,
            "ja.ftl and en.ftl must list the same ids in the same order"
        );
        for lang in [Lang::Ja, Lang::En] {
            let tr = Tr::new(lang).unwrap();
            for id in &ja {
                assert!(!tr.t(id).starts_with('['), "{id} is missing in {lang:?}");
            }
        }
    }

    #[test]
    fn arguments_and_plurals() {
        let ja = Tr::new(Lang::Ja).unwrap();
        assert_eq!(
            ja.t_with("present-count", &[("count", 12.into())]),
            "在所 12人"
        );
        let en = Tr::new(Lang::En).unwrap();
        assert_eq!(
            en.t_with("checked-in", &[("count", 1.into())]),
            "Checked in 1 person"
        );
        assert_eq!(
            en.t_with("checked-in", &[("count", 3.into())]),
            "Checked in 3 people"
        );
        assert_eq!(en.t("no-such-id"), "[no-such-id]");
    }
}
