#!/usr/bin/env python3
"""Generate domain/data/variants.bin (and variants.tsv, its readable twin) from Unihan.

Usage: python3 domain/data/gen_variants.py UNIHAN_DIR MJ_SHRINK_TSV
where UNIHAN_DIR holds Unihan_Variants.txt, Unihan_OtherMappings.txt and Unihan_IRGSources.txt
(Unicode 15.0:
`apt-get download unicode-data`, then `dpkg-deb -x`, then `bunzip2` the two files under
usr/share/unicode/; or unzip Unihan.zip from https://www.unicode.org/Public/15.0.0/ucd/), and
MJ_SHRINK_TSV is the MJ shrink map's first candidate per ideograph, written by
`KAZASHI_MJ_DUMP=/tmp/mj_shrink.tsv cargo test -p kazashi-domain --test mj_shrink_dump -- --ignored`
(the MJ縮退マップ as the `jntajis` crate embeds it).

What it makes: a map from a CJK character to the representative of its variant family, for
comparing names only. Families are joined from, in this order of trust:
  1. kJoyoKanji / kJinmeiyoKanji with a code point (the 人名用漢字別表's 旧字体 and 異体字 of a
     常用漢字, and the 常用漢字 table's own alternative forms): old form -> 常用 form;
  1b. the MJ shrink map, only from ideographs with a Japanese source (kIRG_JSource) or outside
     the BMP (𠮷 has none: it is a 戸籍 character, not a JIS one) that are
     not themselves a 常用漢字 or 人名用漢字 (its first candidate maps 玉→王, 書→昼, 着→著, and
     Chinese simplified forms by look alone, 叹→又, 关→笑: distinct characters);
  2. kZVariant (the same abstract character);
  3. kSemanticVariant and kSpecializedSemanticVariant;
  4. kTraditionalVariant / kSimplifiedVariant, only where the pair is one-to-one both ways
     (Chinese simplification merges distinct characters: 干 for 乾 and 幹).
An edge from 1b.-4. is refused when it would put two standard characters (a 常用漢字 or a
人名用漢字 as listed, not as the 旧字体 of another) into one family, as they are distinct
characters in Japanese (大/太, 萩/荻, 一/壱 …). One pair is joined on purpose, JOINED_STANDARDS:
斎 and 斉, whose old forms 齋 and 齊 Unihan links (kSpecializedSemanticVariant) and which people
and offices write for each other in the surname サイトウ (issue 26 names the 齋/齊/斎/斉
family). The representative is the family's 常用漢字, else its 人名用漢字,
else its lowest code point. Characters NFKC changes (compatibility ideographs) are mapped by
NFKC first, so the table never maps onto one of them.

variants.bin: little-endian u32 pairs (from, to), sorted by `from`.
variants.tsv: the same, one `from<TAB>to` line each, for review.
"""
import os
import struct
import sys
import unicodedata


JOINED_STANDARDS = [('斎', '斉')]


def cp(tok):
    tok = tok.split('<')[0]
    return int(tok[2:], 16) if tok.startswith('U+') else None


def is_cjk(c):
    return (0x3400 <= c <= 0x4DBF or 0x4E00 <= c <= 0x9FFF or 0xF900 <= c <= 0xFAFF
            or 0x20000 <= c <= 0x3FFFF)


def nfkc(c):
    s = unicodedata.normalize('NFKC', chr(c))
    return ord(s) if len(s) == 1 else c


def main(d, mj_path):
    joyo, jinmei = set(), set()
    j_edges, z_edges, s_edges, ts = [], [], [], {}
    with open(os.path.join(d, 'Unihan_OtherMappings.txt'), encoding='utf-8') as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            u, field, value = line.rstrip('\n').split('\t')
            c = int(u[2:], 16)
            if field == 'kJoyoKanji':
                if value.startswith('U+') and nfkc(cp(value)) != c:
                    j_edges.append((c, cp(value)))
                else:
                    joyo.add(c)
            elif field == 'kJinmeiyoKanji':
                if ':' in value and nfkc(cp(value.split(':')[1])) != c:
                    j_edges.append((c, cp(value.split(':')[1])))
                else:
                    jinmei.add(c)
    with open(os.path.join(d, 'Unihan_Variants.txt'), encoding='utf-8') as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            u, field, value = line.rstrip('\n').split('\t')
            c = int(u[2:], 16)
            targets = [t for t in (cp(v) for v in value.split()) if t is not None]
            if field == 'kZVariant':
                z_edges += [(c, t) for t in targets]
            elif field in ('kSemanticVariant', 'kSpecializedSemanticVariant'):
                s_edges += [(c, t) for t in targets]
            elif field in ('kTraditionalVariant', 'kSimplifiedVariant'):
                ts.setdefault(c, set()).update(t for t in targets if t != c)
    mj_edges = []
    with open(mj_path, encoding='utf-8') as f:
        for line in f:
            a, b = line.rstrip('\n').split('\t')
            mj_edges.append((ord(a), ord(b)))
    japanese = set()
    with open(os.path.join(d, 'Unihan_IRGSources.txt'), encoding='utf-8') as f:
        for line in f:
            parts = line.rstrip('\n').split('\t')
            if len(parts) == 3 and parts[1] == 'kIRG_JSource':
                japanese.add(int(parts[0][2:], 16))
    standard = joyo | jinmei
    mj_edges = [(a, b) for a, b in mj_edges if a not in standard and (a in japanese or a >= 0x20000)]
    t_edges = [(a, b) for a, bs in ts.items() if len(bs) == 1
               for b in bs if ts.get(b) == {a}]

    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    members = {}

    def group(x):
        return members.setdefault(find(x), {find(x)})

    refused = []
    old_forms = {nfkc(a) for a, _ in j_edges + mj_edges}

    def union(a, b, checked):
        a, b = nfkc(a), nfkc(b)
        if a == b or not (is_cjk(a) and is_cjk(b)):
            return
        ra, rb = find(a), find(b)
        if ra == rb:
            return
        ga, gb = group(a), group(b)
        if checked and (ga & standard) and (gb & standard):
            # Two standard families: joined only through two variant forms linked here.
            refused.append((a, b))
            return
        parent[rb] = ra
        members[ra] = ga | gb
        members.pop(rb, None)

    for a, b in j_edges:
        union(a, b, False)
    for a, b in JOINED_STANDARDS:
        union(ord(a), ord(b), False)
    for edges in (mj_edges, z_edges, s_edges, t_edges):
        for a, b in edges:
            union(a, b, True)

    table = {}
    for root, ms in members.items():
        if len(ms) < 2:
            continue
        rep = min(ms, key=lambda c: (c not in joyo, c not in jinmei, c in old_forms, c))
        for m in ms:
            if m != rep:
                table[m] = rep
    out = os.path.dirname(os.path.abspath(__file__))
    pairs = sorted(table.items())
    with open(os.path.join(out, 'variants.bin'), 'wb') as f:
        for a, b in pairs:
            f.write(struct.pack('<II', a, b))
    with open(os.path.join(out, 'variants.tsv'), 'w', encoding='utf-8') as f:
        f.write('# generated by gen_variants.py from Unihan 15.0 (Unicode License v3) and the MJ shrink map (CC BY-SA 2.1 JP); do not edit\n')
        for a, b in pairs:
            f.write(f'{chr(a)}\t{chr(b)}\n')
    multi = [''.join(chr(c) for c in sorted(ms & standard))
             for ms in members.values() if len(ms & standard) > 1]
    print(f'{len(pairs)} mappings, {len(refused)} edges refused, '
          f'families with several standard characters: {" ".join(multi)}', file=sys.stderr)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
