#include "kiln/report/page.h"

#include <algorithm>
#include <cctype>

#include "kiln/core/error.h"
#include "sha256.h"

namespace kiln::report {

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string json_for_script(const nlohmann::json& j) {
  const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out += ch;
    }
  }
  return out;
}

namespace {

bool valid_id(const std::string& id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::string anchor_for(const std::string& title, std::size_t n) {
  std::string a = "s" + std::to_string(n) + "-";
  for (char c : title) {
    if (std::isalnum(static_cast<unsigned char>(c))) a += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!a.empty() && a.back() != '-') a += '-';
  }
  while (!a.empty() && a.back() == '-') a.pop_back();
  return a;
}

// Colours as CSS variables: figures name classes, the page decides light, dark and print.
constexpr const char* kStyle = R"CSS(
:root{color-scheme:light dark;--bg:#ffffff;--fg:#1b1f24;--muted:#57606a;--grid:#e4e7eb;--axis:#8c959f;--panel:#f6f8fa;--border:#d0d7de;
--c0:#1f6feb;--c1:#cf222e;--c2:#1a7f37;--c3:#8250df;--c4:#bc4c00;--c5:#0a7e8c;--c6:#bf3989;--c7:#6e7781;
--bar:#4c78a8;--hi:#e45756;--heat:#1f4e9c;--q0:#c6dbef;--q1:#9ecae1;--q2:#6baed6;--q3:#3182bd;--q4:#08306b}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9da7b3;--grid:#262c34;--axis:#6e7681;--panel:#161b22;--border:#30363d;
--c0:#58a6ff;--c1:#ff7b72;--c2:#56d364;--c3:#bc8cff;--c4:#ffa657;--c5:#39c5cf;--c6:#f778ba;--c7:#8b949e;
--bar:#6ea8dc;--hi:#ff7b72;--heat:#79b8ff;--q0:#1c2b3d;--q1:#1f4b75;--q2:#2f74b5;--q3:#58a6ff;--q4:#cae8ff}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{padding:18px 28px 10px;border-bottom:1px solid var(--border)}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:var(--muted)}
nav{padding:8px 28px;border-bottom:1px solid var(--border);font-size:13px}nav a{margin-right:14px;color:var(--c0);text-decoration:none}
main{padding:8px 28px 28px;max-width:1200px}
section{margin-top:18px}h2{font-size:18px;margin:18px 0 8px;border-bottom:1px solid var(--border);padding-bottom:4px}
figure{margin:14px 0 22px;padding:10px 12px;background:var(--panel);border:1px solid var(--border);border-radius:6px;overflow-x:auto;break-inside:avoid}
figcaption{font-weight:600;margin-bottom:6px}figure p.note{color:var(--muted);margin:6px 0 0;font-size:13px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 18px;margin:8px 0}dl.kv dt{color:var(--muted)}dl.kv dd{margin:0}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}th,td{padding:3px 10px;border-bottom:1px solid var(--border);text-align:left}
th.n,td.n{text-align:right}tr.hi td{background:color-mix(in srgb,var(--hi) 14%,transparent)}
.tw{overflow-x:auto}details{margin:10px 0}summary{cursor:pointer;color:var(--c0)}
pre{background:var(--panel);border:1px solid var(--border);padding:10px;overflow-x:auto;font-size:12px}
footer{padding:14px 28px;color:var(--muted);font-size:12px;border-top:1px solid var(--border)}
svg{display:block;max-width:none}svg text{fill:var(--fg);font-family:inherit}
svg .g{stroke:var(--grid);stroke-width:1}svg .ax{stroke:var(--axis);stroke-width:1}svg .frame{fill:none;stroke:var(--axis)}
svg .tk{font-size:11px;fill:var(--muted)}svg .tk.small{font-size:9px}svg .tk.hit{fill:var(--hi);font-weight:600}
svg .at{font-size:12px;font-weight:600}svg .lg{font-size:12px}
svg .l{fill:none;stroke-width:1.8;stroke-linejoin:round}svg .dash{stroke-dasharray:5 4}
svg .mk{stroke:var(--muted);stroke-dasharray:3 3}svg .mkt{font-size:11px;fill:var(--muted)}
svg .bar{fill:var(--bar)}svg .bar.hi{fill:var(--hi)}svg .hm{fill:var(--heat)}svg .hm0{fill:var(--bg)}
svg .hmt{font-size:10px;fill:var(--fg)}svg .hmt.inv{fill:var(--bg)}
svg .pc{fill:none;stroke-width:1.2;stroke-opacity:.75}svg .qn{stroke:var(--c7)}
svg .q0{stroke:var(--q0)}svg .q1{stroke:var(--q1)}svg .q2{stroke:var(--q2)}svg .q3{stroke:var(--q3)}svg .q4{stroke:var(--q4)}
svg .sw{stroke:none}
svg .c0{stroke:var(--c0)}svg .c1{stroke:var(--c1)}svg .c2{stroke:var(--c2)}svg .c3{stroke:var(--c3)}
svg .c4{stroke:var(--c4)}svg .c5{stroke:var(--c5)}svg .c6{stroke:var(--c6)}svg .c7{stroke:var(--c7)}
svg .p.c0,svg .sw.c0{fill:var(--c0)}svg .p.c1,svg .sw.c1{fill:var(--c1)}svg .p.c2,svg .sw.c2{fill:var(--c2)}svg .p.c3,svg .sw.c3{fill:var(--c3)}
svg .p.c4,svg .sw.c4{fill:var(--c4)}svg .p.c5,svg .sw.c5{fill:var(--c5)}svg .p.c6,svg .sw.c6{fill:var(--c6)}svg .p.c7,svg .sw.c7{fill:var(--c7)}
svg .p{stroke:var(--bg);stroke-width:.8}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}.tile{background:var(--panel);border:1px solid var(--border);border-radius:6px;padding:8px 12px;min-width:150px}
.tile b{display:block;font-size:20px;font-variant-numeric:tabular-nums}.tile span{color:var(--muted);font-size:12px}.status{color:var(--muted);font-size:12px}
textarea,input,button{font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--border);border-radius:4px;padding:4px 8px}
textarea{width:100%;min-height:72px}button{cursor:pointer;background:var(--panel);margin:6px 8px 0 0}button:disabled{opacity:.5;cursor:default}
.answer{margin:10px 0}.answer .label{font-size:18px;font-weight:600}.err{color:var(--hi)}
.attr{line-height:2.1;white-space:pre-wrap;background:var(--panel);border:1px solid var(--border);padding:8px 10px;border-radius:6px}
.attr mark{color:var(--fg);border-radius:3px;padding:1px 1px}.legend-pos{color:var(--c1)}.legend-neg{color:var(--c0)}
@media print{:root{--bg:#fff;--fg:#000;--muted:#333;--panel:#fff;--border:#bbb;--grid:#ddd}
nav{display:none}body{font-size:11pt}main{max-width:none;padding:0 8mm}figure{border:none;padding:0;overflow:visible}
h2{break-after:avoid}header{padding:0 8mm 6px}footer{padding:6px 8mm}form,button{display:none}}
)CSS";

}  // namespace

Page::Page(std::string title, std::string subtitle) : title_(std::move(title)), subtitle_(std::move(subtitle)) {}

void Page::section(const std::string& title) {
  if (in_section_) body_ += "</section>\n";
  const std::string anchor = anchor_for(title, toc_.size());
  toc_.emplace_back(anchor, title);
  body_ += "<section id=\"" + anchor + "\"><h2>" + escape_html(title) + "</h2>\n";
  in_section_ = true;
}

void Page::paragraph(const std::string& text) { body_ += "<p>" + escape_html(text) + "</p>\n"; }

void Page::key_values(const std::vector<std::pair<std::string, std::string>>& rows) {
  body_ += "<dl class=\"kv\">";
  for (const auto& [k, v] : rows) body_ += "<dt>" + escape_html(k) + "</dt><dd>" + escape_html(v) + "</dd>";
  body_ += "</dl>\n";
}

void Page::add(Figure f) {
  if (!valid_id(f.id)) {
    throw Error("report figure id '" + f.id + "' must be lowercase letters, digits and '-'");
  }
  if (std::find(figure_ids_.begin(), figure_ids_.end(), f.id) != figure_ids_.end() || data_.contains(f.id)) {
    throw Error("report figure id '" + f.id + "' is used twice on the page; give each figure its own id");
  }
  figure_ids_.push_back(f.id);
  body_ += "<figure class=\"fig\" id=\"" + f.id + "\" data-kind=\"" + escape_html(f.kind) + "\"><figcaption>" +
           escape_html(f.title) + "</figcaption>" + f.body;
  if (!f.note.empty()) body_ += "<p class=\"note\">" + escape_html(f.note) + "</p>";
  body_ += "</figure>\n";
  nlohmann::json entry = {{"title", f.title}, {"kind", f.kind}, {"data", std::move(f.data)}};
  data_[f.id] = std::move(entry);
}

void Page::details(const std::string& summary, const std::string& text) {
  body_ += "<details><summary>" + escape_html(summary) + "</summary><pre>" + escape_html(text) + "</pre></details>\n";
}

void Page::html(const std::string& markup) { body_ += markup; }

void Page::script(const std::string& js) {
  std::string lower = js;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower.find("</script") != std::string::npos || lower.find("<!--") != std::string::npos) {
    throw Error("report page script contains \"</script\" or \"<!--\", which would end or hide it early; "
                "write \"<\\/script\" in the script instead");
  }
  scripts_.push_back(js);
}

void Page::data(const std::string& key, nlohmann::json value) {
  if (data_.contains(key)) throw Error("report data key '" + key + "' is used twice on the page");
  data_[key] = std::move(value);
}

std::string Page::render(const std::string& generator) const {
  std::string h;
  h.reserve(body_.size() + 8192);
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  // Nothing on the page may load anything: styles are inline, figures are inline SVG.
  std::string csp = "default-src 'none'; style-src 'unsafe-inline'";
  if (!scripts_.empty()) {
    // A server's page: its own scripts by hash, requests to its own origin, previews of chosen files.
    csp += "; script-src";
    for (const auto& s : scripts_) csp += " " + detail::csp_script_hash(s);
    csp += "; connect-src 'self'; img-src data:; form-action 'none'; base-uri 'none'";
  }
  h += "<meta http-equiv=\"Content-Security-Policy\" content=\"" + csp + "\">\n";
  h += "<meta name=\"generator\" content=\"" + escape_html(generator) + "\">\n";
  h += "<title>" + escape_html(title_) + "</title>\n<style>" + std::string(kStyle) + "</style>\n</head>\n<body>\n";
  h += "<header><h1>" + escape_html(title_) + "</h1>";
  if (!subtitle_.empty()) h += "<p>" + escape_html(subtitle_) + "</p>";
  h += "</header>\n";
  if (!toc_.empty()) {
    h += "<nav>";
    for (const auto& [anchor, t] : toc_) h += "<a href=\"#" + anchor + "\">" + escape_html(t) + "</a>";
    h += "</nav>\n";
  }
  h += "<main>\n" + body_;
  if (in_section_) h += "</section>\n";
  h += "</main>\n<footer>Generated by " + escape_html(generator) +
       (scripts_.empty() ? ". One file: no scripts run and nothing is fetched; the numbers behind each figure are in the "
                           "JSON block kiln-report-data."
                         : ". Every static figure reads without JavaScript; the live parts ask this server only. The "
                           "numbers behind each figure are in the JSON block kiln-report-data.") +
       "</footer>\n";
  nlohmann::json all = data_;
  all["generator"] = generator;
  all["figures"] = figure_ids_;
  h += "<script type=\"application/json\" id=\"kiln-report-data\">" + json_for_script(all) + "</script>\n";
  for (const auto& s : scripts_) h += "<script>" + s + "</script>\n";
  h += "</body>\n</html>\n";
  return h;
}

}  // namespace kiln::report
