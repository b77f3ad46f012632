#!/usr/bin/env python3
"""Validate tests/data/name_pairs/pairs.tsv and print its counts.

Python 3 standard library only. Exit status 0 when the file is well formed,
1 otherwise (each problem is printed with its line number).

    python3 tests/data/name_pairs/check.py [path/to/pairs.tsv]

Checks:
  * header and column count, UTF-8, no stray whitespace around fields;
  * ids unique; class and label from the fixed sets;
  * birth dates: ISO YYYY-MM-DD must be a real calendar date; other
    notations (era 昭和55年3月4日 / S55.3.4, 1980/3/4, 1980年3月4日,
    19800304, full-width digits, kanji numerals) are accepted only in
    class date_typo and are converted here to check the label:
    a date_typo row labelled `same` must name the same day on both sides;
  * consistency of each class with its label (e.g. a `same`/`possible`
    reading row has equal names and births and different kana; shared_name
    rows are all `distinct`);
  * kana fields hold only kana, the long-vowel mark and spaces;
  * the minimum counts the data set promises.
"""
import collections
import datetime
import os
import re
import sys
import unicodedata

COLUMNS = ["id", "class", "label",
           "a_name", "a_kana", "a_birth", "a_address",
           "b_name", "b_kana", "b_birth", "b_address", "note"]
LABELS = ["same", "possible", "distinct"]
CLASSES = ["variant_glyph", "width_kana", "reading", "date_typo",
           "address_notation", "swapped_order", "shared_name", "married_name"]
MINIMUM = {"variant_glyph": 40, "reading": 40, "date_typo": 40,
           "address_notation": 40, "shared_name": 40,
           "width_kana": 25, "swapped_order": 25, "married_name": 1}
MIN_ROWS = 320
MIN_DISTINCT = 100

# Era start dates (Gregorian). Year 1 (元年) of an era is the year it starts.
ERAS = [("明治", "M", datetime.date(1868, 1, 25)),
        ("大正", "T", datetime.date(1912, 7, 30)),
        ("昭和", "S", datetime.date(1926, 12, 25)),
        ("平成", "H", datetime.date(1989, 1, 8)),
        ("令和", "R", datetime.date(2019, 5, 1))]

KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4,
                "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


class DateProblem(Exception):
    pass


def kanji_number(s):
    """'三十' -> 30, '十四' -> 14, '二十四' -> 24, '元' -> 1, '12' -> 12."""
    if s == "元":
        return 1
    if s.isdigit():
        return int(s)
    if "十" in s:
        tens, _, ones = s.partition("十")
        t = KANJI_DIGITS[tens] if tens else 1
        o = KANJI_DIGITS[ones] if ones else 0
        return t * 10 + o
    value = 0
    for ch in s:
        value = value * 10 + KANJI_DIGITS[ch]
    return value


def era_date(era_index, year, month, day):
    name, _, start = ERAS[era_index]
    end = (ERAS[era_index + 1][2] - datetime.timedelta(days=1)
           if era_index + 1 < len(ERAS) else datetime.date(9999, 12, 31))
    try:
        d = datetime.date(start.year + year - 1, month, day)
    except ValueError as e:
        raise DateProblem("%s%d年%d月%d日 is not a calendar date (%s)" % (name, year, month, day, e))
    if not (start <= d <= end):
        raise DateProblem("%s%d年%d月%d日 lies outside the %s era (%s..%s)"
                          % (name, year, month, day, name, start, end))
    return d


ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
KNUM = "[0-9〇零一二三四五六七八九十]+"
FORMS = [
    (re.compile(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})$"), "western"),
    (re.compile(r"^(\d{4})(\d{2})(\d{2})$"), "western"),
    (re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"), "western"),
    (re.compile(r"^(明治|大正|昭和|平成|令和)(元|%s)年(%s)月(%s)日$" % (KNUM, KNUM, KNUM)), "era"),
    (re.compile(r"^([MTSHR])\.?(\d{1,2})[./](\d{1,2})[./](\d{1,2})$"), "era_abbrev"),
    (re.compile(r"^(\d{2})[./](\d{1,2})[./](\d{1,2})$"), "two_digit_year"),
]


def parse_birth(raw):
    """Return (date, is_iso). Raises DateProblem for an unusable value."""
    m = ISO.match(raw)
    if m:
        try:
            return datetime.date(*map(int, m.groups())), True
        except ValueError as e:
            raise DateProblem("%r is not a calendar date (%s)" % (raw, e))
    s = unicodedata.normalize("NFKC", raw)
    for rx, kind in FORMS:
        m = rx.match(s)
        if not m:
            continue
        if kind == "western":
            try:
                return datetime.date(*map(int, m.groups())), False
            except ValueError as e:
                raise DateProblem("%r is not a calendar date (%s)" % (raw, e))
        if kind == "era":
            idx = [e[0] for e in ERAS].index(m.group(1))
            y, mo, d = (kanji_number(g) for g in m.groups()[1:])
            return era_date(idx, y, mo, d), False
        if kind == "era_abbrev":
            idx = [e[1] for e in ERAS].index(m.group(1))
            return era_date(idx, *map(int, m.groups()[1:])), False
        if kind == "two_digit_year":
            raise DateProblem("%r has a two-digit year without an era: ambiguous" % raw)
    raise DateProblem("%r is in no known date notation" % raw)


KANA_OK = re.compile(r"^[\u3041-\u3096\u30A1-\u30FA\u30FC\uFF66-\uFF9F \u3000]*$")


def main(path):
    problems = []

    def bad(lineno, msg):
        problems.append("line %d: %s" % (lineno, msg))

    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    if "\r" in text:
        problems.append("file contains CR characters (use LF line ends)")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0].split("\t") != COLUMNS:
        print("bad header: expected %s" % "\t".join(COLUMNS))
        return 1

    rows = []
    ids = set()
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(COLUMNS):
            bad(lineno, "%d columns, expected %d" % (len(fields), len(COLUMNS)))
            continue
        r = dict(zip(COLUMNS, fields))
        r["_line"] = lineno
        rows.append(r)
        for k in COLUMNS:
            v = r[k]
            if v != v.strip(" \u3000"):
                bad(lineno, "%s has leading/trailing spaces" % k)
        for k in ("id", "class", "label", "a_name", "b_name", "a_birth", "b_birth",
                  "a_address", "b_address", "note"):
            if not r[k]:
                bad(lineno, "%s is empty" % k)
        if r["id"] in ids:
            bad(lineno, "duplicate id %s" % r["id"])
        ids.add(r["id"])
        if r["class"] not in CLASSES:
            bad(lineno, "unknown class %r" % r["class"])
        if r["label"] not in LABELS:
            bad(lineno, "unknown label %r" % r["label"])
        for k in ("a_kana", "b_kana"):
            if not KANA_OK.match(r[k]):
                bad(lineno, "%s %r holds non-kana characters" % (k, r[k]))
        a = [r[k] for k in ("a_name", "a_kana", "a_birth", "a_address")]
        b = [r[k] for k in ("b_name", "b_kana", "b_birth", "b_address")]
        if a == b:
            bad(lineno, "the two records are identical")

        cls, label = r["class"], r["label"]
        dates = {}
        for side in ("a", "b"):
            raw = r[side + "_birth"]
            try:
                d, iso = parse_birth(raw)
                dates[side] = d
                if not iso and cls != "date_typo":
                    bad(lineno, "%s_birth %r is not ISO; non-ISO births belong in class date_typo" % (side, raw))
            except DateProblem as e:
                dates[side] = None
                if cls == "date_typo" and label == "possible":
                    pass  # an unusable date is exactly what a reviewer must look at
                else:
                    bad(lineno, "%s_birth: %s" % (side, e))
        na = label != "distinct"
        if cls == "date_typo":
            if label == "same" and dates.get("a") != dates.get("b"):
                bad(lineno, "date_typo/same but the dates differ: %s vs %s" % (dates.get("a"), dates.get("b")))
            if label == "possible" and None not in (dates.get("a"), dates.get("b")) and dates["a"] == dates["b"]:
                bad(lineno, "date_typo/possible but both dates are the same day")
        elif na and r["a_birth"] != r["b_birth"]:
            bad(lineno, "%s/%s but the births differ" % (cls, label))
        if na and cls in ("variant_glyph", "reading", "date_typo", "swapped_order") \
                and r["a_address"] != r["b_address"]:
            bad(lineno, "%s/%s but the addresses differ" % (cls, label))
        if na and cls in ("reading", "date_typo", "address_notation") and r["a_name"] != r["b_name"]:
            bad(lineno, "%s/%s but the names differ" % (cls, label))
        if na and cls == "address_notation" and r["a_address"] == r["b_address"]:
            bad(lineno, "address_notation/%s with identical addresses" % label)
        if cls == "reading" and (not r["a_kana"] or not r["b_kana"] or r["a_kana"] == r["b_kana"]):
            bad(lineno, "reading rows need two different, non-empty readings")
        if cls == "variant_glyph" and na and r["a_name"] == r["b_name"]:
            bad(lineno, "variant_glyph/%s with identical names" % label)
        if cls == "shared_name" and label != "distinct":
            bad(lineno, "shared_name rows are distinct by definition")
        if cls == "swapped_order" and na:
            strip = lambda s: re.sub(r"[ \u3000]", "", s)
            an, bn = r["a_name"], r["b_name"]
            parts_a = re.split(r"[ \u3000]+", an)
            if strip(an) != strip(bn) and strip("".join(reversed(parts_a))) != strip(bn):
                bad(lineno, "swapped_order/%s: b_name is not a/reordered or re-spaced" % label)

    # Counts
    by_class = collections.OrderedDict((c, collections.Counter()) for c in CLASSES)
    labels = collections.Counter()
    for r in rows:
        if r["class"] in by_class:
            by_class[r["class"]][r["label"]] += 1
        labels[r["label"]] += 1

    width = max(len(c) for c in CLASSES)
    print("%-*s %6s %9s %9s %6s" % (width, "class", "same", "possible", "distinct", "total"))
    for c, cnt in by_class.items():
        print("%-*s %6d %9d %9d %6d" % (width, c, cnt["same"], cnt["possible"],
                                         cnt["distinct"], sum(cnt.values())))
    print("%-*s %6d %9d %9d %6d" % (width, "all", labels["same"], labels["possible"],
                                     labels["distinct"], len(rows)))

    all_text = "\n".join("\t".join(r[k] for k in COLUMNS[3:11]) for r in rows)
    non_bmp = sorted({ch for ch in all_text if ord(ch) > 0xFFFF and not 0xE0100 <= ord(ch) <= 0xE01EF})
    ivs_rows = [r["id"] for r in rows
                if any(0xE0100 <= ord(ch) <= 0xE01EF for ch in r["a_name"] + r["b_name"])]
    non_bmp_rows = [r["id"] for r in rows
                    if any(ord(ch) > 0xFFFF and not 0xE0100 <= ord(ch) <= 0xE01EF
                           for ch in r["a_name"] + r["b_name"])]
    non_iso_rows = [r["id"] for r in rows
                    if not (ISO.match(r["a_birth"]) and ISO.match(r["b_birth"]))]
    empty_kana = [r["id"] for r in rows if not r["a_kana"] or not r["b_kana"]]
    print()
    print("characters outside the BMP: %s in %d rows" %
          (" ".join("%s U+%X" % (ch, ord(ch)) for ch in non_bmp), len(non_bmp_rows)))
    print("rows with ideographic variation selectors: %d (%s)" % (len(ivs_rows), ", ".join(ivs_rows)))
    print("rows with a non-ISO birth date: %d" % len(non_iso_rows))
    print("rows with an empty kana field: %d" % len(empty_kana))

    # Promised minimums
    if len(rows) < MIN_ROWS:
        problems.append("only %d rows, at least %d promised" % (len(rows), MIN_ROWS))
    if labels["distinct"] < MIN_DISTINCT:
        problems.append("only %d distinct rows, at least %d promised" % (labels["distinct"], MIN_DISTINCT))
    for c, n in MINIMUM.items():
        if sum(by_class[c].values()) < n:
            problems.append("class %s has %d rows, at least %d promised" % (c, sum(by_class[c].values()), n))

    print()
    if problems:
        for p in problems:
            print("PROBLEM", p)
        print("FAILED: %d problem(s)" % len(problems))
        return 1
    print("OK: %d pairs" % len(rows))
    return 0


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "pairs.tsv")))
