"""The evaluation report as one printable HTML page (Japanese with English labels, A4 print
stylesheet, inline SVG charts) and as PDF through WeasyPrint. No conversation content: the
records hold none. Every name that comes from an operator is escaped."""

from __future__ import annotations

import functools
from collections.abc import Callable
from html import escape

from signaling import charts, erlang
from signaling.evaluation import Counts, EqualAccess, Evaluation, Rating, Staffing
from signaling.fleet_rollup import KioskMonth
from tsunagu.languages import Language

CUT_TITLES = {"language": ("言語", "Language"), "modality": ("手話・音声", "Modality"),
              "ward": ("区", "Ward"), "counter": ("窓口", "Counter"),
              "procedure": ("手続き", "Procedure"), "hour": ("時間帯", "Hour of arrival")}
MODALITY = {"sign": "手話 / sign", "spoken": "音声言語 / spoken"}
NONE = "(なし / none)"
NO_DATA = "データなし / no data"

STYLE = """
@page { size: A4; margin: 14mm 14mm 16mm;
  @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; } }
html { font-family: "Noto Sans CJK JP", "Noto Sans JP", sans-serif; font-size: 9pt;
  color: #111; }
body { margin: 0; }
h1 { font-size: 16pt; margin: 0 0 2mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; border-bottom: 1.5px solid #1f5fa8;
  break-after: avoid; }
h3 { font-size: 10pt; margin: 4mm 0 1mm; break-after: avoid; }
.en { color: #555; font-weight: normal; }
p { margin: 1mm 0; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm; }
th, td { border: 0.5px solid #bbb; padding: 0.6mm 1.2mm; text-align: right; }
th { background: #eef2f7; font-weight: bold; }
th.l, td.l { text-align: left; }
td.l { overflow-wrap: anywhere; }  /* operators' names may be one long word */
td { white-space: nowrap; }
td.l { white-space: normal; }
tr { break-inside: avoid; }
.totals td { font-size: 11pt; font-weight: bold; }
.gap { border: 1.5px solid #b03a2e; background: #fbeeec; padding: 2mm; margin: 2mm 0; }
.ok { border: 1px solid #5b8c3a; background: #f0f6ec; padding: 2mm; margin: 2mm 0; }
.note { color: #444; font-size: 8pt; }
svg { max-width: 100%; display: block; margin: 2mm 0; }
.chart { break-inside: avoid; }
@media screen { body { max-width: 190mm; margin: 10mm auto; } }
"""


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} %"


def _secs(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} s"


def _h(ja: str, en: str, tag: str = "h2") -> str:
    return f'<{tag}>{escape(ja)} <span class="en">{escape(en)}</span></{tag}>'


class Labels:
    """How codes read in the report: a language's Japanese and English names."""

    def __init__(self, catalogue: dict[str, Language]) -> None:
        self.catalogue = catalogue

    def language(self, code: str, *, short: bool = False) -> str:
        lang = self.catalogue.get(code)
        if lang is None:
            return code or NONE
        return lang.name_ja if short else f"{lang.name_ja} / {lang.name_en}"

    def cut(self, name: str, value: str) -> str:
        if name == "language":
            return self.language(value)
        if name == "modality":
            return MODALITY.get(value, value or NONE)
        if name == "hour":
            return f"{value}:00"
        return value or NONE


COUNT_HEAD = ("<th>受付<br>Offered</th><th>応答<br>Answered</th><th>放棄<br>Abandoned</th>"
              "<th>不成立<br>Failed</th><th>サービスレベル<br>Service level</th>"
              "<th>平均待ち時間<br>Mean wait</th><th>放棄率<br>Abandon rate</th>")


def _count_cells(c: Counts, *, totals: bool = False) -> str:
    def cell(name: str) -> str:
        attr = f' data-total="{name}"' if totals else ""
        return f"<td{attr}>{c[name]}</td>"
    return ("".join(cell(n) for n in ("offered", "answered", "abandoned", "failed"))
            + f"<td>{_pct(c['service_level_pct'])}</td><td>{_secs(c['asa_s'])}</td>"
            f"<td>{_pct(c['abandon_rate_pct'])}</td>")


def summary(ev: Evaluation) -> str:
    m = ev.month
    return (_h("概要", "Summary")
            + f"<table class='totals'><tr>{COUNT_HEAD}</tr>"
            f"<tr>{_count_cells(ev.totals, totals=True)}</tr></table>"
            f"<p class='note'>サービスレベル = {m.service_level_s:g}秒以内に応答した通話 ÷ 受付 "
            f"(目標 {m.goal_pct:g} %) / Service level = calls answered within "
            f"{m.service_level_s:g} s ÷ offered (target {m.goal_pct:g} %). "
            f"平均待ち時間は応答した通話の待ち時間の平均 / Mean wait is over answered calls. "
            f"通話のある日 / days with calls: {ev.open_days}</p>")


def equal_access(ev: Evaluation, labels: Labels) -> str:
    rows: list[EqualAccess] = ev.equal_access
    out = [_h("平等なアクセス: 手話と音声言語", "Equal access: sign beside spoken")]
    gaps = [r for r in rows if r.sentence_ja]
    if gaps:
        out += [f"<div class='gap'><p>{escape(r.sentence_ja)}</p><p>{escape(r.sentence_en)}"
                "</p></div>" for r in gaps]
    else:
        out.append("<div class='ok'><p>どの区でも手話と音声言語のサービスレベルの差は10ポイント"
                   "以内。</p><p>In every ward the service level of sign-language calls is "
                   "within 10 points of spoken-language calls.</p></div>")
    out.append("<table><thead><tr><th class='l' rowspan='2'>区<br>Ward</th>"
               "<th colspan='3'>手話 / Sign</th><th colspan='3'>音声言語 / Spoken</th>"
               "<th rowspan='2'>差 (ポイント)<br>Gap (points)</th>"
               "<th rowspan='2'>待ち時間の差<br>Wait gap</th></tr><tr>"
               + "<th>受付<br>Offered</th><th>SL</th><th>平均待ち<br>Mean wait</th>" * 2
               + "</tr></thead>")
    for r in rows:
        ward = "全区 / All wards" if r.ward == "" else labels.cut("ward", r.ward)
        cells = "".join(f"<td>{c['offered']}</td><td>{_pct(c['service_level_pct'])}</td>"
                        f"<td>{_secs(c['asa_s'])}</td>" for c in (r.sign, r.spoken))
        gap = "—" if r.gap_points is None else f"{r.gap_points:+.1f}"
        out.append(f"<tr><td class='l'>{escape(ward)}</td>{cells}<td>{gap}</td>"
                   f"<td>{_secs(r.wait_gap_s)}</td></tr>")
    out.append("</table><p class='note'>差 = 音声言語のSL − 手話のSL (正なら手話が不利) / "
               "Gap = spoken service level − sign service level (positive: sign is worse off)."
               "</p>")
    wards = [r for r in rows if r.ward]
    out.append("<div class='chart'>" + charts.bar_chart(
        [r.ward or NONE for r in wards],
        [("手話 sign", [r.sign["service_level_pct"] or 0.0 for r in wards]),
         ("音声言語 spoken", [r.spoken["service_level_pct"] or 0.0 for r in wards])],
        title="区別サービスレベル / Service level by ward", unit="%", top=100,
        marker=(ev.month.goal_pct, f"目標 target {ev.month.goal_pct:g} %")) + "</div>")
    return "".join(out)


def by_hour(ev: Evaluation) -> str:
    rows = dict(ev.cuts["hour"])
    hours = [f"{h:02d}" for h in ev.hours]
    series = [(name, [float(rows[h][key]) for h in hours]) for name, key in
              (("受付 offered", "offered"), ("応答 answered", "answered"),
               ("放棄 abandoned", "abandoned"), ("不成立 failed", "failed"))]
    sl = [("サービスレベル service level", [rows[h]["service_level_pct"] or 0.0 for h in hours])]
    xs = [f"{h:d}時" for h in ev.hours]
    return ("<div class='chart'>" + charts.line_chart(
        xs, series, title="時間帯別の通話 / Calls by hour of arrival")
        + charts.line_chart(xs, sl, unit="%", top=100,
                            title="時間帯別サービスレベル / Service level by hour", height=180)
        + "</div>")


def cut_table(ev: Evaluation, name: str, labels: Labels) -> str:
    ja, en = CUT_TITLES[name]
    rows = "".join(f"<tr><td class='l'>{escape(labels.cut(name, value))}</td>"
                   f"{_count_cells(c)}</tr>" for value, c in ev.cuts[name])
    if not rows:
        rows = f"<tr><td class='l' colspan='8'>{NO_DATA}</td></tr>"
    return (_h(f"{ja}別", f"By {en.lower()}", "h3")
            + f"<table><thead><tr><th class='l'>{ja}<br>{en}</th>{COUNT_HEAD}</tr></thead>"
            f"{rows}</table>")


def language_chart(ev: Evaluation, labels: Labels) -> str:
    rows = ev.cuts["language"]
    names = [labels.language(code, short=True) for code, _ in rows]
    series = [(n, [float(c[key]) for _, c in rows]) for n, key in
              (("応答 answered", "answered"), ("放棄 abandoned", "abandoned"),
               ("不成立 failed", "failed"))]
    return ("<div class='chart'>" + charts.bar_chart(
        names, series, stacked=True, title="言語別の通話 / Calls by language") + "</div>")


def waits(ev: Evaluation) -> str:
    labels = [f"{b} s" for b, _, _ in ev.waits]
    chart = charts.bar_chart(
        labels, [("応答まで answered", [float(a) for _, a, _ in ev.waits]),
                 ("放棄まで abandoned", [float(b) for _, _, b in ev.waits])],
        title="待ち時間の分布 / Wait distribution (calls)")
    rows = "".join(f"<tr><td class='l'>{b} s</td><td>{a}</td><td>{x}</td></tr>"
                   for b, a, x in ev.waits)
    return (_h("待ち時間の分布", "Wait distribution")
            + f"<div class='chart'>{chart}</div><table><tr><th class='l'>待ち時間<br>Wait</th>"
            f"<th>応答した通話<br>Answered</th><th>放棄した通話<br>Abandoned</th></tr>{rows}"
            "</table><p class='note'>応答した通話は応答までの時間、放棄した通話はあきらめるまでの"
            "時間 / Answered calls by their time to answer, abandoned calls by the time before "
            "they gave up. A wait on a bucket edge counts in the bucket below it (20-30 s holds "
            "30.0 s).</p>")


def _hour_matrix(hours: list[int], langs: list[str], labels: Labels,
                 cell: dict[tuple[str, int], str]) -> str:
    head = "".join(f"<th>{escape(labels.language(c, short=True))}<br>{escape(c)}</th>"
                   for c in langs)
    rows = "".join(
        f"<tr><td class='l'>{h:02d}:00</td>"
        + "".join(f"<td>{cell.get((c, h), '—')}</td>" for c in langs) + "</tr>"
        for h in hours)
    return (f"<table><thead><tr><th class='l'>時間帯<br>Hour</th>{head}</tr></thead>{rows}"
            "</table>")


def occupancy(ev: Evaluation, labels: Labels) -> str:
    langs = sorted(ev.occupancy)
    cells = {(c, h): _pct(v) for c in langs for h, v in ev.occupancy[c].items()}
    # talk runs on past the last hour calls arrived in
    hours = sorted(set(ev.hours) | {h for _, h in cells})
    body = _hour_matrix(hours, langs, labels, cells) if langs else f"<p>{NO_DATA}</p>"
    return (_h("通訳者の稼働率", "Interpreter occupancy by language and hour") + body
            + "<p class='note'>稼働率 = その時間帯の通話時間 ÷ (その時間帯に通話した通訳者の数 × "
            "1時間)、月の日ごとに合計。ログイン時間は記録されないため、通話しなかった通訳者は数えない。"
            " / Occupancy = talk time in that hour ÷ (distinct interpreters who talked in that "
            "hour × 1 h), summed over the month's days. Signed-in time is not recorded, so an "
            "interpreter who took no call in an hour is not counted.</p>")


def _rating_rows(rows: list[tuple[str, Rating]], label: Callable[[str], str]) -> str:
    out = []
    for value, r in rows:
        dist = "".join(f"<td>{n}</td>" for n in r.dist)
        share = _pct(round(100 * r.count / r.answered, 1) if r.answered else None)
        mean = "—" if r.mean is None else f"{r.mean:.2f}"
        out.append(f"<tr><td class='l'>{escape(label(value))}</td><td>{r.count}</td>"
                   f"<td>{share}</td><td>{mean}</td>{dist}</tr>")
    return "".join(out) or f"<tr><td class='l' colspan='9'>{NO_DATA}</td></tr>"


def ratings(ev: Evaluation, labels: Labels) -> str:
    head = ("<th>評価数<br>Ratings</th><th>評価率<br>Rated share</th><th>平均<br>Mean</th>"
            + "".join(f"<th>{n}</th>" for n in range(1, 6)))
    out = [_h("利用者の評価", "Ratings (1 = worst, 5 = best)")]
    for name, ja, en in (("language", "言語", "Language"), ("ward", "区", "Ward")):
        rows = _rating_rows(ev.ratings[name], functools.partial(labels.cut, name))
        out.append(f"<table><tr><th class='l'>{ja}<br>{en}</th>{head}</tr>{rows}</table>")
    out.append("<p class='note'>評価率 = 評価数 ÷ 応答した通話 / Rated share = ratings ÷ answered "
               "calls. 評価は会話の内容と結び付けない / A rating is never linked to what was said."
               "</p>")
    return "".join(out)


def fleet(kiosks: list[KioskMonth] | None) -> str:
    out = [_h("端末の稼働状況", "Tablet fleet: availability and test calls")]
    if not kiosks:
        return "".join(out) + f"<p><strong>{NO_DATA}</strong></p>"
    out.append("<table><thead><tr><th class='l'>端末<br>Kiosk</th><th class='l'>区<br>Ward</th>"
               "<th class='l'>窓口<br>Counter</th><th>開庁時間中の稼働率<br>Availability</th>"
               "<th>テスト通話<br>Test calls</th><th>成功<br>Passed</th>"
               "<th>成功率<br>Pass rate</th></tr></thead>")
    for k in kiosks:
        out.append(f"<tr><td class='l'>{escape(k.kiosk)}</td><td class='l'>{escape(k.ward)}</td>"
                   f"<td class='l'>{escape(k.counter)}</td><td>{_pct(k.availability_pct)}</td>"
                   f"<td>{k.tests}</td><td>{k.passed}</td><td>{_pct(k.pass_rate_pct)}</td></tr>")
    out.append("</table><p class='note'>稼働率 = 開庁時間中に接続していた時間 ÷ 確認した開庁時間 / "
               "Availability = time connected during opening hours ÷ opening hours checked."
               "</p>")
    return "".join(out)


def staffing(ev: Evaluation, labels: Labels) -> str:
    m = ev.month
    rows: list[Staffing] = ev.staffing
    out = [_h("通訳者の必要人数 (推奨)", "Staffing recommendation (Erlang C)")]
    if not rows:
        return "".join(out) + f"<p>{NO_DATA}</p>"
    langs = sorted({s.language for s in rows})
    cells = {(s.language, s.hour): "—" if s.needed is None else
             f"<strong>{s.needed}</strong> <span class='note'>({s.erlangs:.2f} E)</span>"
             for s in rows}
    recs_ja, recs_en = [], []
    for code in langs:
        peak = max((s for s in rows if s.language == code and s.needed is not None),
                   key=lambda s: (s.needed or 0, -s.hour), default=None)
        if peak is not None:
            recs_ja.append(f"{labels.language(code, short=True)}: {peak.hour}時台に{peak.needed}人")
            recs_en.append(f"{labels.language(code).split(' / ')[-1]}: {peak.needed} at "
                           f"{peak.hour:02d}:00")
    out.append(f"<p><strong>推奨:</strong> 各時間帯で{m.service_level_s:g}秒以内に"
               f"{m.goal_pct:g} %の通話に応答するには、表の人数の通訳者を言語ごとに配置する。"
               f"最も多く必要な時間帯: {escape('、'.join(recs_ja))}。</p>"
               f"<p><strong>Recommendation:</strong> to answer {m.goal_pct:g} % of calls within "
               f"{m.service_level_s:g} s, staff each language with the interpreters shown for "
               f"each hour. Peak need: {escape('; '.join(recs_en))}.</p>")
    out.append(_hour_matrix(ev.hours, langs, labels, cells))
    out.append(f"<p class='note'>{escape(erlang.ASSUMPTIONS_JA)} / "
               f"{escape(erlang.ASSUMPTIONS_EN)}</p>")
    out.append("<table><thead><tr><th class='l'>言語<br>Language</th><th>時間帯<br>Hour</th>"
               "<th>通話<br>Calls</th><th>日数<br>Days</th><th>通話/時<br>Calls/h</th>"
               "<th>対応時間<br>Handle</th><th>負荷<br>Erlangs</th><th>必要人数<br>Needed</th>"
               "<th>予測SL<br>Predicted SL</th><th>実働<br>Active</th></tr></thead>")
    for s in rows:
        out.append(f"<tr><td class='l'>{escape(s.language)}</td><td>{s.hour:02d}:00</td>"
                   f"<td>{s.calls}</td><td>{s.open_days}</td><td>{s.per_hour:.2f}</td>"
                   f"<td>{_secs(s.handle_s)}</td><td>{s.erlangs:.2f}</td>"
                   f"<td>{'—' if s.needed is None else s.needed}</td>"
                   f"<td>{_pct(s.service_level_pct)}</td><td>{s.active:.2f}</td></tr>")
    out.append("</table><p class='note'>通話/時 = その時間帯に着信した通話 ÷ 通話のある日数; "
               f"対応時間 = その言語の平均通話時間 + 後処理 {m.wrapup_s:g}秒; "
               "必要人数 = 目標を満たす最小のN (N > 負荷); "
               "実働 = その時間帯に通話した通訳者の1日平均 / "
               "Calls/h = calls that arrived in that hour ÷ days with calls; handle = the "
               f"language's mean talk time + {m.wrapup_s:g} s wrap-up; needed = the smallest N > "
               "Erlangs meeting the target: SL = 1 − P_wait · exp(−(N − A) · T / AHT); active = "
               "distinct interpreters who talked in that hour, per day.</p>")
    return "".join(out)


def render(ev: Evaluation, *, catalogue: dict[str, Language],
           kiosks: list[KioskMonth] | None, generated: str) -> str:
    """The whole report page."""
    labels = Labels(catalogue)
    m = ev.month
    cuts = "".join(cut_table(ev, name, labels) for name in
                   ("language", "modality", "ward", "counter", "procedure", "hour"))
    return (
        "<!doctype html><html lang='ja'><head><meta charset='utf-8'>"
        f"<title>tsunagu 月次評価報告 {m.label}</title><style>{STYLE}</style></head><body>"
        f"<h1>遠隔通訳サービス 月次評価報告 {m.label}</h1>"
        f"<p class='en'>Remote interpretation service — monthly evaluation report, {m.label}"
        f"</p><p class='note'>対象: {m.first} – {m.last} ({escape(str(m.tz))}) / "
        f"作成 generated {escape(generated)}</p>"
        + summary(ev) + equal_access(ev, labels)
        + _h("通話の内訳", "Calls by language, modality, ward, counter, procedure and hour")
        + language_chart(ev, labels) + by_hour(ev) + cuts + waits(ev)
        + occupancy(ev, labels) + ratings(ev, labels) + fleet(kiosks)
        + staffing(ev, labels) + "</body></html>")


def to_pdf(html: str) -> bytes:
    """The page printed to PDF by WeasyPrint (CPU-heavy: call it off the event loop)."""
    import weasyprint  # a second of import time: only when a PDF is asked for

    pdf: bytes = weasyprint.HTML(string=html).write_pdf()
    return pdf
