// The page half of the report kit: one self-contained HTML file (inline CSS and SVG, no script that
// runs, no request to any host: a Content-Security-Policy of default-src 'none' says so to the
// browser; a server's own page adds one inline script allowed by its hash, which talks to its own
// origin only), light and dark colours (prefers-color-scheme), a print stylesheet, and the numbers
// every figure is drawn from embedded as one JSON block
// (<script type="application/json" id="kiln-report-data">) that tests and tools can read back.
// Formatting only: nothing here reads or writes files.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/report/figures.h"

namespace kiln::report {

/// `text` with & < > " ' replaced by character references: safe in element content and in
/// attribute values (single or double quoted).
[[nodiscard]] std::string escape_html(std::string_view text);

/// `j` as JSON text safe inside a <script type="application/json"> element: '<', '>' and '&' (which
/// JSON allows only inside strings) are written as \u003c, \u003e and \u0026, so no "</script>" or
/// "<!--" can appear. JSON.parse gives back `j`.
[[nodiscard]] std::string json_for_script(const nlohmann::json& j);

/// A report page under construction. Not thread-safe.
class Page {
 public:
  /// `title`: the page's <title> and heading; `subtitle`: one line under it (may be empty).
  explicit Page(std::string title, std::string subtitle = "");

  /// Starts a section (an <h2> and an entry in the page's table of contents).
  void section(const std::string& title);
  /// A paragraph of plain text (escaped).
  void paragraph(const std::string& text);
  /// A two-column list of names and values (both escaped).
  void key_values(const std::vector<std::pair<std::string, std::string>>& rows);
  /// A figure (chart or table). Throws Error when another figure of the page has the same id.
  void add(Figure figure);
  /// A collapsed block of preformatted text (a config, a command's output), escaped.
  void details(const std::string& summary, const std::string& text);
  /// Extra numbers for the embedded JSON block under `key` (figures add theirs under their ids).
  /// Throws Error when the key is taken.
  void data(const std::string& key, nlohmann::json value);
  /// Markup from the kit itself (a form, a live panel's frame): added as is, never user text.
  void html(const std::string& markup);
  /// An inline script, run at the end of the body. The page's Content-Security-Policy then allows
  /// exactly this script (by its SHA-256 hash), requests to the page's own origin (connect-src
  /// 'self', for a server's page that polls its /metrics) and data: images (a preview of a chosen
  /// file); without scripts it forbids every script and request. `js` must not contain "</script".
  /// Throws Error when it does.
  void script(const std::string& js);
  /// Number of figures added so far.
  [[nodiscard]] std::size_t figure_count() const { return figure_ids_.size(); }

  /// The whole document: <!DOCTYPE html> ... </html>. `generator` goes in the footer and the
  /// embedded data ("kiln VERSION").
  [[nodiscard]] std::string render(const std::string& generator) const;

 private:
  std::string title_, subtitle_;
  std::string body_;
  std::vector<std::pair<std::string, std::string>> toc_;  // (anchor, title)
  std::vector<std::string> figure_ids_;
  nlohmann::json data_ = nlohmann::json::object();
  std::vector<std::string> scripts_;
  bool in_section_ = false;
};

}  // namespace kiln::report
