"""The report page: one self-contained HTML file (inline CSS, inline SVG, data: images, a few lines of
inline JS to sort tables). A Content-Security-Policy forbids every network fetch, so the page behaves
the same from a laptop's downloads folder as from the machine that trained the run.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape
from importlib import metadata
from typing import Any

from resnetcli import __version__
from resnetcli.engine.bookkeeping import topk_label
from resnetcli.report import svg
from resnetcli.report.collect import RunData, calibration, probability_of

#: (id, heading) of every section, in page order; tests check each one renders
SECTIONS = (
    ("glance", "Run at a glance"),
    ("curves", "Training curves"),
    ("results", "Test results"),
    ("confused", "Most-confused pairs"),
    ("top-loss", "Top-loss gallery"),
    ("calibration", "Calibration"),
    ("data", "The data"),
    ("config", "Config and environment"),
)

#: images in the top-loss gallery, and examples per confused pair
GALLERY = 24
PAIR_EXAMPLES = 6

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#1f2937;color:#fff;padding:14px 28px}header h1{margin:0;font-size:20px}
header p{margin:2px 0 0;color:#cbd5e1}nav a{color:#93c5fd;margin-right:12px;text-decoration:none}
main{padding:0 28px 40px;max-width:1280px}section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;
margin:18px 0;padding:6px 20px 16px}h2{font-size:17px;border-bottom:1px solid #eee;padding-bottom:6px}
h3{font-size:14px;margin:14px 0 6px}table{border-collapse:collapse;margin:6px 0}
td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th.sort{cursor:pointer;user-select:none}th.sort:after{content:" \\2195";color:#aaa}
td.n{text-align:right;font-variant-numeric:tabular-nums}.kv th{color:#555;font-weight:500}
.na{color:#8a6d00;background:#fff8e1;border-left:3px solid #f0b400;padding:6px 10px}
.charts{display:flex;flex-wrap:wrap;gap:18px}.grid{stroke:#e5e7eb}.ct{font-weight:600;font-size:13px}
.tick{font-size:11px;fill:#444}.gallery{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:112px;font-size:11px}figure img{width:96px;height:96px;object-fit:contain;
image-rendering:pixelated;background:#eee;border:1px solid #ddd}.bad{color:#b91c1c}
pre{background:#f6f8fa;padding:10px;overflow:auto;max-height:420px;font-size:12px}
"""

# Click a header to sort by that column; numbers sort as numbers.
_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.classList.add('sort');
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v || a.cells[col].textContent;
        var y = b.cells[col].dataset.v || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'")


def _na(text: str) -> str:
    return f'<p class="na">not available: {escape(text)}</p>'


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}%"  # metrics are in percent (collect._in_percent)


def _kv(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows if v is not None)
    return f'<table class="kv">{body}</table>'


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, sortable: bool = False) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append(f'<td class="n" data-v="{v!r}">{v:.2f}</td>')
            elif isinstance(v, int):
                cells.append(f'<td class="n" data-v="{v}">{v}</td>')
            else:
                cells.append(f"<td>{escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(uri: str | None, caption: str) -> str:
    img = f'<img src="{uri}" alt="{escape(caption)}">' if uri else '<div class="na">no image</div>'
    return f"<figure>{img}<figcaption>{escape(caption)}</figcaption></figure>"


# ------------------------------------------------------------------------------------------- sections


def _glance(run: RunData) -> str:
    cfg = run.config or {}
    epochs = run.epochs
    def acc(row: dict[str, Any] | None) -> str | None:
        if row is None or row.get("val_acc") is None:
            return None
        return f"{row['val_acc']:.2f}% (epoch {row['epoch']})"

    best = max(epochs, key=lambda r: r.get("val_acc") or -1) if epochs else None
    last = epochs[-1] if epochs else None
    seconds = sum(float(r.get("time") or 0) for r in epochs)
    options = ", ".join(f"{k}={v}" for k, v in (cfg.get("arch_options") or {}).items())
    test = run.metrics
    rows = [
        ("architecture", f"{cfg.get('arch', '?')}" + (f" ({options})" if options else "")),
        ("data", run.data_spec),
        ("epochs", f"{len(epochs)} of {cfg.get('epochs', '?')}" if epochs else None),
        ("best val accuracy", acc(best)),
        ("last val accuracy", acc(last)),
        (f"{run.eval_split} accuracy" if test else "test accuracy",
         f"top-1 {_pct(test.get('top1'))}, top-{test.get('k', 5)} {_pct(test.get('topk'))}, "
         f"loss {test.get('loss', 0):.4f}"
         if test else "not tested yet: run `resnetcli test`"),
        ("training time", f"{seconds:.1f} s over {len(epochs)} epochs" if epochs else None),
        ("device", f"{cfg.get('device', '?')}" + (f", AMP {cfg.get('amp_dtype')}" if cfg.get("amp") else ", fp32")),
        ("command", f"resnetcli train --config {run.run_dir / 'config.yaml'}  (the resolved settings of this run)"),
        ("run folder", str(run.run_dir)),
    ]
    return _kv(rows)


def _curves(run: RunData) -> str:
    if not run.epochs:
        return _na("the run has no metrics.jsonl yet: train it with `resnetcli train`")
    xs = [r.get("epoch") for r in run.epochs]

    def col(name: str) -> list[float | None]:
        return [r.get(name) for r in run.epochs]

    charts = [
        svg.line_chart("loss", [("train", xs, col("train_loss")), ("val", xs, col("val_loss"))]),
        svg.line_chart("accuracy (%)", [("train", xs, col("train_acc")), ("val", xs, col("val_acc")),
                                        (f"val {topk_label(run.epochs)}", xs, col("val_top5"))]),
        svg.line_chart("learning rate (end of epoch)", [("lr", xs, col("lr"))]),
    ]
    return f'<div class="charts">{"".join(charts)}</div>'


_NOT_TESTED = "the run was never tested: run `resnetcli test` first"


def _results(run: RunData) -> str:
    m = run.metrics
    if not m:
        return _na(_NOT_TESTED)
    macro = m.get("macro") or {}
    head = _kv([("split", m.get("split")), ("images", m.get("samples")), ("top-1", _pct(m.get("top1"))),
                ("macro precision / recall / F1",
                 f"{_pct(macro.get('precision'))} / {_pct(macro.get('recall'))} / {_pct(macro.get('f1'))}")])
    rows = [(c["class"], c["precision"], c["recall"], c["f1"], c["support"]) for c in m.get("per_class", [])]
    table = _table(("class", "precision %", "recall %", "F1 %", "support"), rows, sortable=True)
    heat = svg.heatmap(m.get("confusion_matrix") or [], m.get("classes") or [])
    return (f"{head}<h3>Per class (click a column to sort)</h3>{table}"
            f"<h3>Confusion matrix (rows: true class; colour: share of the row)</h3>{heat}")


def _confused(run: RunData, thumb: Callable[[str], str | None]) -> str:
    m = run.metrics
    if not m or run.predictions is None:
        return _na(_NOT_TESTED)
    pairs = m.get("most_confused") or []
    if not pairs:
        return "<p>No class was confused with another.</p>"
    out = []
    for pair in pairs:
        rows = [r for r in run.predictions
                if r["true_class"] == pair["true"] and r["predicted_class"] == pair["predicted"]]
        rows.sort(key=lambda r: -float(r["top1_prob"]))
        figs = "".join(_figure(thumb(r["ident"]), f"p={float(r['top1_prob']):.2f}") for r in rows[:PAIR_EXAMPLES])
        out.append(f"<h3>{escape(pair['true'])} taken for {escape(pair['predicted'])}: "
                   f"{escape(str(pair['count']))} images ({pair['share_of_true']:.1f}% of {escape(pair['true'])})"
                   f"</h3><div class=\"gallery\">{figs}</div>")
    return "".join(out)


def _top_loss(run: RunData, thumb: Callable[[str], str | None]) -> str:
    if run.predictions is None:
        return _na(_NOT_TESTED)
    wrong = [r for r in run.predictions if r["correct"] == "0"]
    if not wrong:
        return "<p>Every image was classified correctly.</p>"
    wrong.sort(key=lambda r: -float(r["top1_prob"]))
    figs = []
    for r in wrong[:GALLERY]:
        p_true = probability_of(r, r["true_class"])
        true_text = f"{p_true:.2f}" if p_true is not None else "below top-k"
        figs.append(_figure(thumb(r["ident"]), f"true {r['true_class']} (p {true_text}); predicted "
                                               f"{r['predicted_class']} (p {float(r['top1_prob']):.2f})"))
    return (f"<p>The {len(figs)} of {len(wrong)} misclassified images the model was most sure about.</p>"
            f'<div class="gallery">{"".join(figs)}</div>')


def _calibration(run: RunData) -> str:
    if not run.predictions:
        return _na(_NOT_TESTED)
    cal = calibration(run.predictions)
    return (f"<p>Expected calibration error (ECE, {len(cal['bins'])} bins, top-1 confidence): "
            f"<b>{cal['ece']:.4f}</b> on {cal['samples']} images. Bars: accuracy per confidence bin; "
            "orange lines: mean confidence in the bin; dashed: perfect calibration.</p>"
            + svg.reliability(cal["bins"]))


def _data(run: RunData) -> str:
    rep = run.data_report
    if rep is None:
        where = run.data_spec or "?"  # _na escapes
        return _na(f"no report.json beside the data ({where}): the run trained on data that `resnetcli "
                   "preprocess` did not write; run it, or `resnetcli doctor DATA`, to see the data's health")
    parts = [_kv([("input", rep.get("input")), ("dataset", rep.get("dataset")), ("classes", rep.get("classes")),
                  ("images written", rep.get("written")), ("per split", json.dumps(rep.get("written_per_split"))),
                  ("skipped", rep.get("skipped_count")), ("image size", rep.get("image_size") or rep.get("size")),
                  ("preprocess time", f"{rep.get('seconds')} s")])]
    per_class = rep.get("per_class") or {}
    splits = sorted({s for counts in per_class.values() for s in counts})
    if per_class:
        rows = [(c, *(int(counts.get(s, 0)) for s in splits)) for c, counts in per_class.items()]
        parts.append("<h3>Classes and counts</h3>" + _table(("class", *splits), rows, sortable=True))
    skipped = rep.get("skipped") or []
    if skipped:
        parts.append("<h3>Skipped files</h3>" + _table(("file", "reason"),
                                                      [(s["file"], s["reason"]) for s in skipped[:50]]))
    doc = rep.get("doctor")
    parts.append("<h3>Data doctor</h3>")
    parts.append(doctor_html(doc) if doc else _na("this dataset was preprocessed without the doctor; run "
                                                   "`resnetcli preprocess` again or `resnetcli doctor DATA`"))
    return "".join(parts)


def doctor_html(doc: dict[str, Any]) -> str:
    """The doctor's findings (resnetcli.doctor) as tables."""
    rows = []
    for kind in ("exact", "near"):
        part = doc.get(kind) or {}
        leaks = ", ".join(f"{s}: {n}" for s, n in (part.get("leaks") or {}).items()) or "-"
        rows.append((kind, int(part.get("pairs", 0)), int(part.get("duplicate_images", 0)),
                     int(part.get("across_classes", 0)), int(part.get("across_splits", 0)), leaks))
    # report.json travels with the data, which may come from anywhere: every value is escaped
    out = [f"<p>{escape(str(doc.get('images')))} images; near duplicates: difference hash within "
           f"{escape(str(doc.get('near_threshold')))} of 64 bits, confirmed on a 16x16 thumbnail.</p>",
           _table(("duplicates", "pairs", "redundant images", "conflicting labels", "pairs across splits",
                   "leaked (copy in an earlier split)"), rows)]
    dropped = doc.get("dropped")
    if dropped is not None:
        out.append(f"<p>--dedupe left out {int(dropped)} duplicate images.</p>")
    examples = doc.get("examples") or []
    if examples:
        out.append("<h3>Examples</h3>" + _table(
            ("kind", "bits apart", "image", "split / class", "duplicate", "split / class"),
            [(e["kind"], e["distance"], e["a"]["image"], f"{e['a']['split']} / {e['a']['class']}",
              e["b"]["image"], f"{e['b']['split']} / {e['b']['class']}") for e in examples]))
    bal = doc.get("balance") or {}
    if bal:
        smallest = ", ".join(f"{s['class']} ({s['images']})" for s in bal.get("smallest", []))
        out.append(_kv([("class imbalance (largest / smallest)", bal.get("ratio")),
                        ("smallest classes", smallest), ("empty classes", ", ".join(bal.get("empty", [])) or None)]))
    shapes = doc.get("shapes") or {}
    if shapes:
        stat = lambda s: f"{s['min']:g} / {s['median']:g} / {s['max']:g}"  # noqa: E731
        out.append(_kv([("width min / median / max", stat(shapes["width"])),
                        ("height min / median / max", stat(shapes["height"])),
                        ("aspect ratio (w/h) min / median / max", stat(shapes["aspect_ratio"])),
                        ("aspect ratios", ", ".join(f"{k}: {v}" for k, v in shapes["aspect_histogram"].items() if v)),
                        ("grayscale", f"{shapes['grayscale']} ({shapes['grayscale_share']:.1%})"),
                        (f"smaller side under {shapes['small_side_below']} px", shapes["small"])]))
    return "".join(out)


def _versions() -> list[tuple[str, str]]:
    found = []
    for dist in ("torch", "torchvision", "numpy", "pillow", "typer"):
        try:
            found.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            continue
    return found


def _config(run: RunData) -> str:
    cfg = run.config or {}
    env = _kv([("resnetcli", __version__), ("python", platform.python_version()),
               *_versions(), ("machine", f"{platform.system()} {platform.machine()}"),
               ("device (config)", cfg.get("device")), ("precision",
                                                        f"AMP {cfg.get('amp_dtype')}" if cfg.get("amp") else "fp32"),
               ("channels_last", cfg.get("channels_last")), ("compile", cfg.get("compile"))])
    conf = f"<pre>{escape(run.config_text)}</pre>" if run.config_text else _na("no config.yaml in the run folder")
    return (f"<h3>Resolved config (config.yaml)</h3>{conf}<h3>Environment (of the machine writing this "
            f"report)</h3>{env}")


def render(run: RunData, thumb: Callable[[str], str | None]) -> str:
    """The whole page as one string."""
    bodies = {
        "glance": _glance(run), "curves": _curves(run), "results": _results(run),
        "confused": _confused(run, thumb), "top-loss": _top_loss(run, thumb),
        "calibration": _calibration(run), "data": _data(run), "config": _config(run),
    }
    nav = "".join(f'<a href="#{sid}">{escape(title)}</a>' for sid, title in SECTIONS)
    sections = "".join(f'<section id="{sid}"><h2>{escape(title)}</h2>{bodies[sid]}</section>'
                       for sid, title in SECTIONS)
    title = f"resnetcli report: {run.run_dir.name}"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(str(run.run_dir))} &middot; written {stamp} by "
        f"resnetcli {__version__}</p><nav>{nav}</nav></header><main>{sections}</main>"
        f"<script>{_JS}</script></body></html>\n"
    )
