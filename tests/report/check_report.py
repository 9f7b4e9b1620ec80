#!/usr/bin/python3
"""Checks a Kiln report page: strict HTML structure and the numbers its figures are drawn from.

  check_report.py html PAGE.html                     structure only
  check_report.py run PAGE.html RUN_DIR [EVAL.json]  + the numbers equal metrics.jsonl, kiln.json,
                                                       data_report.json and `kiln evaluate --json`
  check_report.py study PAGE.html TRIALS.json        + the numbers equal the study's trials
                                                       (a JSON list of {number, state, value, params})
  check_report.py live PAGE.html                     a served model's page (GET / of kiln serve):
                                                       exactly one inline script, allowed by its
                                                       SHA-256 in the page's CSP, which allows requests
                                                       to its own origin only and names no admin route

Structure: one doctype, every non-void element closed in order (html.parser, no recovery), unique
ids, no element that loads anything (img, link, iframe, script with src, object, embed; no src=,
no href to another host), the embedded JSON parses and names figures that exist, each <svg> has a
<title>. Exits 1 naming every problem.
"""
import html.parser
import json
import math
import sys

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# SVG elements written self-closed (<rect .../>) are complete elements.
LOADERS = {"img", "link", "iframe", "object", "embed", "audio", "video", "source", "frame"}


class Strict(html.parser.HTMLParser):
    def __init__(self, live=False):
        super().__init__(convert_charrefs=True)
        self.live, self.scripts, self.in_script = live, [], False
        self.stack, self.problems, self.ids, self.doctypes = [], [], {}, 0
        self.figures, self.svg_titles, self.data_text, self.in_data = [], [], None, False
        self.svgs = 0

    def where(self):
        return "line %d col %d" % self.getpos()

    def handle_decl(self, decl):
        if decl.lower() == "doctype html":
            self.doctypes += 1
        else:
            self.problems.append("unexpected declaration %r at %s" % (decl, self.where()))

    def check_attrs(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            if a["id"] in self.ids:
                self.problems.append("duplicate id %r at %s (first at %s)" % (a["id"], self.where(), self.ids[a["id"]]))
            self.ids[a["id"]] = self.where()
        if tag in LOADERS and not (self.live and tag == "img" and "src" not in a):
            self.problems.append("<%s> loads a resource at %s" % (tag, self.where()))
        if "src" in a:
            self.problems.append("src=%r at %s" % (a["src"], self.where()))
        href = a.get("href") or a.get("xlink:href")
        same_origin = self.live and href and href.startswith("/") and not href.startswith("//")
        if href and not href.startswith("#") and not same_origin:
            self.problems.append("link to %r at %s: reports link within the page only" % (href, self.where()))
        if tag == "script" and a.get("type") != "application/json":
            if not self.live:
                self.problems.append("executable <script> at %s" % self.where())
            self.in_script = True
            self.scripts.append("")
        if tag == "figure" and a.get("class") == "fig":
            self.figures.append(a.get("id"))
        if tag == "script" and a.get("id") == "kiln-report-data":
            self.in_data = True
            self.data_text = ""

    def handle_starttag(self, tag, attrs):
        self.check_attrs(tag, attrs)
        if tag == "svg":
            self.svgs += 1
            self.svg_titles.append(False)
        if tag == "title" and self.stack and self.stack[-1] == "svg":
            self.svg_titles[-1] = True
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.check_attrs(tag, attrs)

    def handle_endtag(self, tag):
        if tag in VOID:
            self.problems.append("end tag </%s> of a void element at %s" % (tag, self.where()))
            return
        if not self.stack:
            self.problems.append("</%s> with nothing open at %s" % (tag, self.where()))
            return
        if self.stack[-1] != tag:
            self.problems.append("</%s> closes <%s> at %s (open: %s)" % (tag, self.stack[-1], self.where(), "/".join(self.stack[-5:])))
            if tag in self.stack:
                while self.stack and self.stack[-1] != tag:
                    self.stack.pop()
                self.stack.pop()
            return
        self.stack.pop()
        if tag == "script":
            self.in_data = False
            self.in_script = False

    def handle_data(self, data):
        if self.in_script:
            self.scripts[-1] += data
        if self.in_data:
            self.data_text += data


def parse(path, live=False):
    text = open(path, encoding="utf-8").read()
    p = Strict(live)
    p.feed(text)
    p.close()
    problems = list(p.problems)
    if p.doctypes != 1:
        problems.append("%d <!DOCTYPE html> declarations, expected 1" % p.doctypes)
    if p.stack:
        problems.append("unclosed elements at the end: " + "/".join(p.stack))
    if not all(p.svg_titles):
        problems.append("%d of %d <svg> elements have no <title>" % (p.svg_titles.count(False), len(p.svg_titles)))
    for bad in ("prefers-color-scheme", "@media print", "Content-Security-Policy"):
        if bad not in text:
            problems.append("the page has no %s" % bad)
    if live:
        problems += check_live(text, p.scripts)
    data = None
    if p.data_text is None:
        problems.append("no <script type=application/json id=kiln-report-data>")
    else:
        data = json.loads(p.data_text)
        if data.get("figures") != p.figures:
            problems.append("embedded figure list %s differs from the page's figures %s" % (data.get("figures"), p.figures))
        for f in p.figures:
            if f not in data:
                problems.append("figure %s has no numbers in the embedded data" % f)
    return text, data, problems


def check_live(text, scripts):
    """The served page's one script: allowed by hash, talking to its own origin only."""
    import base64, hashlib, re
    problems = []
    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', text)
    if not m:
        return ["no Content-Security-Policy meta element"]
    csp = dict((d.strip().split(" ", 1) + [""])[:2] for d in m[1].split(";"))
    if csp.get("default-src") != "'none'":
        problems.append("CSP default-src is %r, expected 'none'" % csp.get("default-src"))
    if csp.get("connect-src") != "'self'":
        problems.append("CSP connect-src is %r, expected 'self' (the page asks its own server only)" % csp.get("connect-src"))
    if len(scripts) != 1:
        problems.append("%d executable scripts, expected 1" % len(scripts))
    for s in scripts:
        h = "'sha256-%s'" % base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode()
        if csp.get("script-src") != h:
            problems.append("CSP script-src %r does not allow the script (its hash is %s)" % (csp.get("script-src"), h))
        if "/v1/admin" in s or "Authorization" in s:
            problems.append("the page's script names an admin route or a token")
        # The SVG namespace is a name and HOST:PORT the curl example's placeholder, not requests.
        if re.search(r"https?://(?!www\.w3\.org/2000/svg|HOST:PORT)", s):
            problems.append("the page's script names another host")
    return problems


def close(a, b, tol=1e-12):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def series(data, fig, name):
    for s in data[fig]["data"]["series"]:
        if s["name"] == name:
            return s
    raise AssertionError("figure %s has no series %r" % (fig, name))


def check_run(data, run_dir, eval_path, problems):
    steps, epochs = {}, {}
    with open(run_dir + "/metrics.jsonl") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if r["type"] == "step":
                steps[r["step"]] = r
            elif r["type"] == "epoch":
                epochs[r["epoch"]] = r
    manifest = json.load(open(run_dir + "/model/kiln.json"))
    split = "test" if "test" in manifest["metrics"] else "validation"
    m = manifest["metrics"][split]
    want = lambda cond, what: cond or problems.append(what)

    # Epoch curves: every epoch, exactly.
    ep = sorted(epochs)
    for fig, name, key in (("loss-per-epoch", "training loss", "train_loss"), ("loss-per-epoch", "validation loss", "val_loss"),
                           ("loss-per-epoch", "learning rate", "lr"), ("validation-metrics", "macro-F1", "val_macro_f1"),
                           ("validation-metrics", "accuracy", "val_accuracy")):
        s = series(data, fig, name)
        want(s["x"] == ep, "%s/%s: epochs %s, metrics.jsonl has %s" % (fig, name, s["x"], ep))
        got, exp = s["y"], [epochs[e][key] for e in ep]
        want(len(got) == len(exp) and all(close(a, b) for a, b in zip(got, exp)), "%s/%s: %s != metrics.jsonl %s" % (fig, name, got, exp))
    best = manifest["training"]["best_epoch"]
    want(any(mk["x"] == best for mk in data["validation-metrics"]["data"]["markers"]), "best epoch %s not marked" % best)

    # Step curve: each drawn point is a logged step, the ends and the extremes are kept.
    s = series(data, "loss-per-step", "loss")
    want(s["points"] == len(steps), "loss-per-step: %s points, metrics.jsonl has %d steps" % (s["points"], len(steps)))
    for x, y in zip(s["x"], s["y"]):
        if x not in steps or not close(steps[x]["loss"], y):
            problems.append("loss-per-step: point (%s, %s) is not a logged step" % (x, y))
            break
    ks = sorted(steps)
    want(s["x"][0] == ks[0] and s["x"][-1] == ks[-1], "loss-per-step: first/last step not drawn")
    losses = [steps[k]["loss"] for k in ks]
    want(min(losses) in s["y"] and max(losses) in s["y"], "loss-per-step: the smallest or largest loss was dropped")
    want(s["drawn"] <= 1000, "loss-per-step: %d points drawn, over the limit" % s["drawn"])

    # Per-parameter gradient norms: every logged value, exactly.
    layer_steps = [k for k in ks if "layer_grad_norms" in steps[k]]
    if layer_steps:
        names = sorted(steps[layer_steps[0]]["layer_grad_norms"])
        for n in names:
            s = series(data, "layer-gradient-norms", n)
            want_x = [k for k in layer_steps if n in steps[k]["layer_grad_norms"]]
            want(s["x"] == want_x, "layer-gradient-norms/%s: steps %s != %s" % (n, s["x"][:5], want_x[:5]))
            want(s["y"] == [steps[k]["layer_grad_norms"][n] for k in want_x], "layer-gradient-norms/%s values differ" % n)
    else:
        want("layer-gradient-norms" not in data, "layer norms drawn but none logged")

    # Classification numbers: equal kiln.json (and kiln evaluate's JSON when given).
    refs = [("kiln.json metrics.%s" % split, m)]
    if eval_path:
        refs.append(("kiln evaluate --json", json.load(open(eval_path))))
    rep = data["classification-report"]["data"]
    cm = data["confusion-counts"]["data"]
    rel = data["reliability"]["data"]
    for name, ref in refs:
        want(rep["per_class"] == ref["per_class"], "classification report per_class differs from " + name)
        for k in ("accuracy", "macro_f1", "weighted_f1", "log_loss", "n"):
            want(close(rep[k], ref[k]), "classification report %s %s != %s %s" % (k, rep[k], name, ref[k]))
        want(cm["values"] == [[float(v) for v in row] for row in ref["confusion_matrix"]], "confusion counts differ from " + name)
        want(cm["rows"] == ref["labels"] and cm["cols"] == ref["labels"], "confusion labels differ from " + name)
        want(close(rel["ece"], ref["ece"]), "ECE %s != %s %s" % (rel["ece"], name, ref["ece"]))
        want(rel["bins"] == ref["reliability"], "reliability bins differ from " + name)
        f1 = data["per-class-f1"]["data"]
        got = dict(zip(f1["labels"], f1["values"]))
        want(got == {k: v["f1"] for k, v in ref["per_class"].items()}, "per-class F1 bars differ from " + name)
        want(f1["values"] == sorted(f1["values"], reverse=True), "per-class F1 bars are not sorted")
    norm = data["confusion-normalized"]["data"]["values"]
    for i, row in enumerate(m["confusion_matrix"]):
        t = sum(row)
        if t and not all(close(a, b / t) for a, b in zip(norm[i], row)):
            problems.append("normalized confusion row %d is not counts / row total" % i)

    # Data report: class counts and drop reasons equal data_report.json.
    try:
        dr = json.load(open(run_dir + "/data_report.json"))
    except FileNotFoundError:
        dr = None
    if dr is not None:
        cc = data["class-counts"]["data"]["classes"]
        for c, n in dr["class_counts_after"].items():
            want(cc[c]["after"] == n, "class-counts %s after: %s != %s" % (c, cc[c]["after"], n))
            want(cc[c]["train"] == dr["splits"]["train"]["class_counts"].get(c, 0), "class-counts %s train split" % c)
        d = data["drop-reasons"]["data"]
        want(dict(zip(d["labels"], d["values"])) == {k: float(v) for k, v in dr["dropped"].items()}, "drop reasons differ")
    tl = manifest["data_profile"]["text_length"]
    h = data["text-length"]["data"]
    want(h["edges"] == [float(e) for e in tl["edges"]] and h["values"] == tl["shares"], "text-length histogram differs from the data profile")


def check_study(data, trials, problems):
    want = lambda cond, what: cond or problems.append(what)
    maximize = data.get("direction", "maximize") == "maximize"
    complete = [t for t in trials if t["state"] == "complete"]
    pruned = [t for t in trials if t["state"] == "pruned"]
    s = series(data, "history", "complete")
    want(s["x"] == [t["number"] for t in complete], "history: complete trials %s" % s["x"])
    want(all(close(a, t["value"]) for a, t in zip(s["y"], complete)), "history: values differ from the trials")
    best, run = None, []
    for t in trials:
        if t["state"] == "complete":
            best = t["value"] if best is None else (max(best, t["value"]) if maximize else min(best, t["value"]))
        if best is not None:
            run.append(best)
    want(series(data, "history", "running best")["y"] == run, "history: running best differs")
    want(series(data, "history", "pruned (last reported value)")["x"] == [t["number"] for t in pruned],
         "history: pruned trials not all marked")
    imp = data["importance"]["data"]["values"]
    want(abs(sum(imp) - 1) < 1e-9, "importances sum to %s" % sum(imp))
    table = data["trials"]["data"]
    want([t["number"] for t in table] == [t["number"] for t in trials], "trial table numbers differ")
    want([t["state"] for t in table] == [t["state"] for t in trials], "trial table states differ")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    mode, page = sys.argv[1], sys.argv[2]
    text, data, problems = parse(page, live=(mode == "live"))
    if data is not None and not problems:
        try:
            if mode == "run":
                check_run(data, sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None, problems)
            elif mode == "study":
                study = json.load(open(sys.argv[3]))
                data["direction"] = study["direction"]
                check_study(data, study["trials"], problems)
        except (KeyError, AssertionError, IndexError, TypeError) as e:
            problems.append("%s: %r" % (type(e).__name__, e))
    if problems:
        print("%s:\n  %s" % (page, "\n  ".join(problems)), file=sys.stderr)
        return 1
    print("%s: ok (%d figures, %d bytes)" % (page, len(data.get("figures", [])), len(text)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
