// sae/report/html_page.hpp: a FeatureReport as one self-contained HTML page.
//
//   sae::HtmlReportOptions options;
//   options.vocabulary = &vocab;        // token pieces (else token ids are shown)
//   options.training = &log;            // training curves (else a note)
//   std::string page = sae::render_report_html(report, options);
//
// The page: a summary table; the feature-density histogram and the training
// curves as inline SVG; one card per chosen latent (top contexts with every
// token shaded by the latent's code on it, an activation histogram, the
// nearest latents by decoder cosine), each with an anchor #latent-N; and a
// search box ('/' focuses it, Enter jumps to the latent typed or the first
// match, Escape clears, j / k step through the cards).
//
// Self-contained: no network, no external script, style sheet, font or image.
// A Content-Security-Policy of default-src 'none' makes the browser refuse
// any load the page might attempt. The markup is well-formed XML as well as
// HTML (every element closed, attributes quoted, only the five XML escapes,
// the script inside CDATA), so a strict XML parser can check it; all data is
// escaped by sae/report/html_text.hpp. The script marks the page
// data-report-ready="yes" on <html> when it has set itself up, and
// data-report-error="..." on any uncaught error, for headless tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "feature_report.hpp"
#include "html_text.hpp"
#include "svg_plot.hpp"
#include "training_log.hpp"
#include "vocabulary.hpp"
#include "../version.hpp"

namespace sae {

struct HtmlReportOptions {
  std::string title = "SAE feature report";
  std::string model_description;             ///< e.g. the model's path and layout
  const Vocabulary* vocabulary = nullptr;    ///< token pieces; null: ids are shown
  const TrainingLog* training = nullptr;     ///< training curves; null: a note instead
};

namespace detail {

inline const char* report_css() {
  return R"CSS(
:root { --ink: #1d232a; --muted: #5d6875; --line: #d5dbe1; --card: #ffffff; --page: #f3f5f7; --accent: #c24e00; }
* { box-sizing: border-box; }
body { margin: 0; padding: 0 1.5rem 3rem; background: var(--page); color: var(--ink);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { padding: 1.2rem 0 0.4rem; }
h1 { margin: 0; font-size: 1.6rem; }
h2 { margin: 1.6rem 0 0.6rem; font-size: 1.2rem; }
h3 { margin: 0; font-size: 1.05rem; }
h4 { margin: 0.6rem 0 0.3rem; font-size: 0.85rem; color: var(--muted); text-transform: uppercase; letter-spacing: 0.04em; }
.sub, .note, .where, .stats { color: var(--muted); }
.note { font-size: 0.9rem; }
a { color: #0b57a4; }
:focus-visible { outline: 3px solid #f0a020; outline-offset: 2px; }
nav.search { position: sticky; top: 0; z-index: 2; background: var(--page); padding: 0.6rem 0; border-bottom: 1px solid var(--line); }
nav.search input { font: inherit; width: min(32rem, 70vw); padding: 0.35rem 0.5rem; border: 1px solid #9aa5b1; border-radius: 4px; }
#search-status { margin-left: 0.8rem; color: var(--muted); }
table.summary { border-collapse: collapse; background: var(--card); }
table.summary th, table.summary td { text-align: left; padding: 0.25rem 0.8rem; border-bottom: 1px solid var(--line); vertical-align: top; }
table.summary th { font-weight: 600; white-space: nowrap; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
.plots figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 0.4rem; }
figcaption { font-size: 0.85rem; color: var(--muted); }
svg.plot { display: block; }
svg.plot .axis { stroke: #66717d; stroke-width: 1; }
svg.plot .bar { fill: #e07b24; }
svg.plot .bar.empty { fill: transparent; }
svg.plot .bar:hover { fill: #a34400; }
svg.plot .line { fill: none; stroke: #0b57a4; stroke-width: 1.5; }
svg.plot .tick { font-size: 10px; fill: #4a545f; }
svg.plot .label { font-size: 11px; fill: #2b333c; }
nav.index { display: flex; flex-wrap: wrap; gap: 0.3rem 0.8rem; font-size: 0.9rem; }
article.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 0.8rem 1rem; margin: 1rem 0; }
article.card:target { border-color: var(--accent); box-shadow: 0 0 0 2px var(--accent); }
.card-body { display: flex; flex-wrap: wrap; gap: 1.2rem; }
.contexts { flex: 1 1 36rem; min-width: 0; }
.side { flex: 0 0 auto; }
ol.ctx-list { margin: 0; padding-left: 1.6rem; }
ol.ctx-list li { margin: 0.15rem 0; }
.act { display: inline-block; min-width: 4.2em; font-variant-numeric: tabular-nums; color: var(--accent); font-weight: 600; }
.ctx { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 0.9rem; }
.tok { white-space: pre; border-radius: 2px; padding: 0 1px; }
.tok.focus { outline: 2px solid #1d232a; }
.where { font-size: 0.8rem; margin-left: 0.6rem; }
ul.neighbours { margin: 0; padding-left: 1.2rem; font-size: 0.9rem; }
footer { margin-top: 2rem; color: var(--muted); font-size: 0.85rem; }
)CSS";
}

inline const char* report_script() {
  return R"JS(
(function () {
  'use strict';
  var root = document.documentElement;
  window.addEventListener('error', function (event) {
    root.setAttribute('data-report-error', String(event.message || 'error'));
  });
  var search = document.getElementById('search');
  var status = document.getElementById('search-status');
  var cards = Array.prototype.slice.call(document.querySelectorAll('article.card'));
  var stats = JSON.parse(document.getElementById('latent-stats').textContent);
  var rows = Number(document.body.getAttribute('data-rows'));
  var isNumber = function (text) { return /^[0-9]+$/.test(text); };

  function filter() {
    var query = search.value.trim().toLowerCase();
    var shown = 0;
    cards.forEach(function (card) {
      var match = query === '' ||
          (isNumber(query) ? card.getAttribute('data-latent').indexOf(query) === 0
                           : card.getAttribute('data-text').toLowerCase().indexOf(query) !== -1);
      card.hidden = !match;
      if (match) shown += 1;
    });
    status.textContent = query === '' ? '' : shown + ' of ' + cards.length + ' cards match';
  }

  function jump(card) {
    card.hidden = false;
    location.hash = '#' + card.id;
    card.focus();
  }

  function jumpToQuery() {
    var query = search.value.trim();
    if (isNumber(query)) {
      var latent = Number(query);
      var card = document.getElementById('latent-' + latent);
      if (card) { jump(card); return; }
      if (latent >= stats.length) {
        status.textContent = 'there is no latent ' + latent + ': the SAE has ' + stats.length;
        return;
      }
      var count = stats[latent][0];
      status.textContent = 'latent ' + latent + ' has no card: it fires on ' + count + ' of ' + rows +
          ' rows, max ' + stats[latent][1] + '. Rerun sae_report with --latents ' + latent + ' to see it.';
      return;
    }
    var visible = cards.filter(function (card) { return !card.hidden; });
    if (visible.length) jump(visible[0]);
  }

  function step(direction) {
    var visible = cards.filter(function (card) { return !card.hidden; });
    if (!visible.length) return;
    var current = visible.indexOf(document.activeElement);
    if (current === -1) current = visible.indexOf(document.getElementById(location.hash.slice(1)));
    var next = current === -1 ? 0 : Math.min(Math.max(current + direction, 0), visible.length - 1);
    jump(visible[next]);
  }

  search.addEventListener('input', filter);
  search.addEventListener('keydown', function (event) {
    if (event.key === 'Enter') { event.preventDefault(); jumpToQuery(); }
    else if (event.key === 'Escape') { search.value = ''; filter(); search.blur(); }
  });
  document.addEventListener('keydown', function (event) {
    var target = event.target;
    var typing = target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA');
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === '/') { event.preventDefault(); search.focus(); search.select(); }
    else if (event.key === 'j') { step(1); }
    else if (event.key === 'k') { step(-1); }
  });
  document.getElementById('js-status').textContent =
      'Keys: / search, Enter jump to the latent typed (or the first match), Escape clear, j / k next / previous card.';
  root.setAttribute('data-report-ready', 'yes');

  // Opened as report.html#selftest (tests/report/browser_test.sh), the page
  // drives its own search with key events and records the outcome on <html>.
  if (location.hash === '#selftest') {
    var outcome = 'passed';
    var expect = function (ok, what) { if (!ok && outcome === 'passed') outcome = 'failed: ' + what; };
    var key = function (target, name) {
      target.dispatchEvent(new KeyboardEvent('keydown', {key: name, bubbles: true, cancelable: true}));
    };
    key(document, '/');
    expect(document.activeElement === search, '/ focuses the search box');
    if (cards.length) {
      var first = cards[0];
      search.value = first.getAttribute('data-latent');
      search.dispatchEvent(new Event('input'));
      expect(!first.hidden, 'the card typed stays visible');
      key(search, 'Enter');
      expect(location.hash === '#' + first.id, 'Enter jumps to the card');
      expect(document.activeElement === first, 'the card has the focus');
      key(search, 'Escape');
      expect(search.value === '' && cards.every(function (card) { return !card.hidden; }), 'Escape clears');
      first.focus();
      key(first, 'j');
      expect(cards.length === 1 || document.activeElement === cards[1], 'j moves to the next card');
      key(document.activeElement, 'k');
      expect(document.activeElement === first, 'k moves back');
      search.value = 'no such token text ' + Math.random();
      search.dispatchEvent(new Event('input'));
      expect(cards.every(function (card) { return card.hidden; }), 'a query matching nothing hides every card');
      key(search, 'Escape');
    }
    search.value = String(stats.length);
    key(search, 'Enter');
    expect(status.textContent.indexOf('there is no latent') === 0, 'a latent out of range is reported');
    root.setAttribute('data-report-selftest', outcome);
  }
})();
)JS";
}

/// How a context token reads on the page, and its tooltip.
inline std::string token_display(const ContextToken& token, const Vocabulary* vocab) {
  if (token.token_id < 0) return "row " + std::to_string(token.row) + " ";
  if (vocab == nullptr) return "#" + std::to_string(token.token_id) + " ";
  std::string shown = Vocabulary::display_text(vocab->piece(token.token_id));
  // Layout characters would break the line or vanish: show them as symbols.
  std::string out;
  for (const char c : shown) {
    if (c == '\n') out += "\xE2\x86\xB5";       // ↵
    else if (c == '\t') out += "\xE2\x86\x92";  // →
    else if (c == '\r') out += "\xE2\x90\x8D";  // ␍
    else out += c;
  }
  return out.empty() ? std::string("\xE2\x88\x85") : out;  // ∅ for an empty piece
}

inline std::string token_tooltip(const ContextToken& token, const Vocabulary* vocab) {
  std::string tip;
  if (token.token_id >= 0) {
    if (vocab != nullptr) tip += "\xE2\x80\x9C" + vocab->piece(token.token_id) + "\xE2\x80\x9D ";  // “piece”
    tip += "id " + std::to_string(token.token_id) + ", ";
  }
  return tip + "row " + std::to_string(token.row) + ", activation " + html::number(token.activation);
}

inline std::string summary_row(const std::string& name, const std::string& value_html) {
  return "<tr><th scope=\"row\">" + html::text(name) + "</th><td>" + value_html + "</td></tr>\n";
}

inline std::string render_summary(const FeatureReport& report, const HtmlReportOptions& o) {
  const ReportSummary& s = report.summary;
  std::string out = "<section id=\"summary\"><h2>Summary</h2><table class=\"summary\"><tbody>\n";
  std::string architecture = s.architecture;
  if (s.k > 0) architecture += " (k = " + std::to_string(s.k) + ")";
  out += summary_row("SAE", html::text(o.model_description.empty() ? std::string("(not named)") : o.model_description));
  out += summary_row("Architecture", html::text(architecture) + ", " + std::to_string(s.input_dim) + " inputs \xE2\x86\x92 " +
                                         std::to_string(s.dict_size) + " latents" +
                                         (s.apply_b_dec_to_input ? ", b_dec subtracted from the input" : ""));
  out += summary_row("Activations", html::text(s.activations_path) + " <span class=\"note\">(" + std::to_string(s.rows) +
                                        " rows \xC3\x97 " + std::to_string(s.input_dim) + ")</span>");
  out += summary_row("Tokens", s.tokens_path.empty() ? std::string("none: contexts show row numbers")
                                                     : html::text(s.tokens_path));
  out += summary_row("L0", html::number(s.l0) + " <span class=\"note\">latents active per row, on average</span>");
  out += summary_row("FVU", html::number(s.fvu) + " <span class=\"note\">fraction of variance unexplained; MSE " +
                                html::number(s.mse) + " per row</span>");
  const double F = static_cast<double>(s.dict_size);
  const auto of_all = [&](double fraction) {  // "15 of 16 latents"
    return html::number(std::round(fraction * F), 12) + " of " + std::to_string(s.dict_size) + " latents";
  };
  out += summary_row("Alive", html::percent(s.alive_fraction) + " <span class=\"note\">(" + of_all(s.alive_fraction) +
                                  " fire on at least one row)</span>");
  out += summary_row("Dead", html::percent(s.dead_fraction) + " <span class=\"note\">(" + of_all(s.dead_fraction) +
                                 " fire on no row)</span>");
  out += summary_row("Dense", html::percent(s.dense_fraction) + " <span class=\"note\">(" + of_all(s.dense_fraction) +
                                  " fire on more than " + html::percent(s.dense_threshold) + " of rows)</span>");
  return out + "</tbody></table></section>\n";
}

inline std::string render_density(const FeatureReport& report) {
  const DensityHistogram& d = report.density;
  std::vector<svg::Bar> bars;
  for (Index i = 0; i < d.bins(); ++i) {
    const std::int64_t count = d.counts[static_cast<std::size_t>(i)];
    bars.push_back({d.edge(i), d.edge(i + 1), static_cast<double>(count),
                    "10^" + html::number(d.edge(i), 3) + " to 10^" + html::number(d.edge(i + 1), 3) + ": " +
                        std::to_string(count) + (count == 1 ? " latent" : " latents")});
  }
  std::string out = "<section id=\"density\"><h2>Feature density</h2><div class=\"plots\"><figure>";
  out += svg::bar_chart(bars, {640, 220, "Feature density histogram", "log10 of the fraction of rows a latent fires on",
                               "latents"});
  out += "<figcaption>Each latent counted once, by the fraction of rows it fires on. Not drawn: " +
         std::to_string(d.never_fired) + (d.never_fired == 1 ? " latent that never fires" : " latents that never fire") +
         " (log10 of 0 is \xE2\x88\x92\xE2\x88\x9E).</figcaption></figure></div></section>\n";
  return out;
}

inline std::string render_training(const TrainingLog* log) {
  std::string out = "<section id=\"training\"><h2>Training</h2>";
  if (log == nullptr) return out + "<p class=\"note\">No metrics file given (sae_report --metrics run/metrics.jsonl, "
                                   "as written by sae_train --metrics).</p></section>\n";
  out += "<p class=\"note\">From " + html::text(log->path) + " (" + std::to_string(log->lines) + " lines).";
  if (!log->absent.empty()) {
    out += " Not in the log:";
    for (std::size_t i = 0; i < log->absent.size(); ++i) out += (i ? ", " : " ") + html::text(log->absent[i]);
    out += ".";
  }
  out += "</p><div class=\"plots\">";
  for (const TrainingCurve& c : log->curves) {
    const double lo = *std::min_element(c.value.begin(), c.value.end());
    const double hi = *std::max_element(c.value.begin(), c.value.end());
    const bool log_y = lo > 0 && hi / lo > 100;  // a loss falling by orders of magnitude
    out += "<figure>" + svg::line_chart(c.step, c.value, {320, 190, c.label + " during training", "step",
                                                          c.label + (log_y ? " (log scale)" : "")},
                                        log_y);
    out += "<figcaption>" + html::text(c.label) + " (key \xE2\x80\x9C" + html::text(c.key) +
           "\xE2\x80\x9D), last " + html::number(c.value.back()) + "</figcaption></figure>";
  }
  return out + "</div></section>\n";
}

inline std::string render_card(const LatentCard& card, const ReportSummary& s, const Vocabulary* vocab,
                               const std::vector<bool>& has_card) {
  const std::string id = std::to_string(card.latent);
  // Search text: the tokens the latent fires on hardest.
  std::string search_text;
  for (const LatentContext& context : card.contexts)
    if (!context.tokens.empty()) search_text += token_display(context.tokens[static_cast<std::size_t>(context.focus)], vocab) + " | ";

  std::string out = "<article class=\"card\" id=\"latent-" + id + "\" tabindex=\"-1\" data-latent=\"" + id +
                    "\" data-text=\"" + html::attribute(search_text) + "\">\n";
  out += "<h3><a href=\"#latent-" + id + "\">Latent " + id + "</a></h3>\n";
  out += "<p class=\"stats\">fires on " + html::percent(card.frequency) + " of rows (" +
         std::to_string(card.firing_count) + " of " + std::to_string(s.rows) + ") \xC2\xB7 mean " +
         html::number(card.mean_activation) + " \xC2\xB7 max " + html::number(card.max_activation) + "</p>\n";
  out += "<div class=\"card-body\"><div class=\"contexts\"><h4>Top activations</h4>";
  if (card.contexts.empty()) {
    out += "<p class=\"note\">This latent never fires on these rows.</p>";
  } else {
    out += "<ol class=\"ctx-list\">";
    for (const LatentContext& context : card.contexts) {
      out += "<li><span class=\"act\">" + html::number(context.activation, 3) + "</span><span class=\"ctx\">";
      for (std::size_t t = 0; t < context.tokens.size(); ++t) {
        const ContextToken& token = context.tokens[t];
        out += "<span class=\"tok";
        if (static_cast<Index>(t) == context.focus) out += " focus";
        out += "\"";
        const double shade = card.max_activation > 0 ? std::clamp(token.activation / card.max_activation, 0.0, 1.0) : 0.0;
        if (shade > 0) out += " style=\"background-color: rgba(255, 140, 0, " + html::number(0.08 + 0.82 * shade, 3) + ")\"";
        out += " title=\"" + html::attribute(token_tooltip(token, vocab)) + "\">" + html::text(token_display(token, vocab)) +
               "</span>";
      }
      out += "</span>";
      if (context.sequence >= 0)
        out += "<span class=\"where\">sequence " + std::to_string(context.sequence) + ", position " +
               std::to_string(context.position) + ", row " + std::to_string(context.row) + "</span>";
      out += "</li>";
    }
    out += "</ol>";
  }
  out += "</div><div class=\"side\"><h4>Activation histogram</h4>";
  std::vector<svg::Bar> bars;
  const double w = card.histogram.bin_width;
  for (std::size_t i = 0; i < card.histogram.counts.size(); ++i) {
    const std::int64_t count = card.histogram.counts[i];
    const double lo = static_cast<double>(i) * w, hi = static_cast<double>(i + 1) * w;
    bars.push_back({lo, hi, static_cast<double>(count),
                    html::number(lo, 3) + " to " + html::number(hi, 3) + ": " + std::to_string(count) + " rows"});
  }
  out += svg::bar_chart(bars, {300, 160, "Activation histogram of latent " + id, "activation (nonzero)", "rows"});
  out += "<h4>Nearest latents (decoder cosine)</h4>";
  if (card.neighbours.empty()) {
    out += "<p class=\"note\">none</p>";
  } else {
    out += "<ul class=\"neighbours\">";
    for (const LatentNeighbour& n : card.neighbours) {
      const std::string other = std::to_string(n.latent);
      const bool linked = n.latent >= 0 && static_cast<std::size_t>(n.latent) < has_card.size() &&
                          has_card[static_cast<std::size_t>(n.latent)];
      out += "<li>" + (linked ? "<a href=\"#latent-" + other + "\">" + other + "</a>" : other) + " <span class=\"note\">" +
             html::number(n.cosine, 3) + "</span></li>";
    }
    out += "</ul>";
  }
  return out + "</div></div></article>\n";
}

}  // namespace detail

/// The page (see the top of this file).
inline std::string render_report_html(const FeatureReport& report, const HtmlReportOptions& options = {}) {
  const ReportSummary& s = report.summary;
  std::vector<bool> has_card(static_cast<std::size_t>(s.dict_size), false);
  for (const LatentCard& card : report.cards)
    if (card.latent >= 0 && card.latent < s.dict_size) has_card[static_cast<std::size_t>(card.latent)] = true;

  std::string page;
  page.reserve(1 << 20);
  page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n";
  // Nothing may be fetched: styles and the script are inline, images are none.
  page += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
          "script-src 'unsafe-inline'\"/>\n";
  page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n";
  page += "<title>" + html::text(options.title) + "</title>\n<style>" + detail::report_css() + "</style>\n</head>\n";
  page += "<body data-rows=\"" + std::to_string(s.rows) + "\">\n";
  page += "<header><h1>" + html::text(options.title) + "</h1><p class=\"sub\">" +
          html::text(options.model_description) + " on " + html::text(s.activations_path) + "</p></header>\n";
  page += "<nav class=\"search\" aria-label=\"Find a latent\"><label for=\"search\">Find a latent </label>"
          "<input id=\"search\" type=\"search\" autocomplete=\"off\" spellcheck=\"false\" "
          "placeholder=\"latent number or token text (press / to focus, Enter to jump)\"/>"
          "<span id=\"search-status\" role=\"status\" aria-live=\"polite\"></span></nav>\n";
  page += detail::render_summary(report, options);
  page += detail::render_density(report);
  page += detail::render_training(options.training);

  page += "<section id=\"cards\"><h2>Latents</h2>\n";
  if (report.cards.empty()) {
    page += "<p class=\"note\">No cards: no latent fires on these rows.</p>\n";
  } else {
    page += "<p class=\"note\">" + std::to_string(report.cards.size()) +
            " cards. Tokens are shaded by the latent's activation on them; the outlined token is the top "
            "activation itself. Hover a token for its piece, id and activation.</p>\n<nav class=\"index\" "
            "aria-label=\"Latents with a card\">";
    for (const LatentCard& card : report.cards)
      page += "<a href=\"#latent-" + std::to_string(card.latent) + "\">" + std::to_string(card.latent) + "</a>";
    page += "</nav>\n";
    for (const LatentCard& card : report.cards) page += detail::render_card(card, s, options.vocabulary, has_card);
  }
  page += "</section>\n<footer><p id=\"js-status\">The search box needs JavaScript.</p>"
          "<p>Written by sae_report (sae " SAE_VERSION_STRING ").</p></footer>\n";

  // Per latent [firing count, max activation], so the search can answer for latents without a card.
  page += "<script type=\"application/json\" id=\"latent-stats\">[";
  for (Index f = 0; f < s.dict_size; ++f) {
    if (f > 0) page += ",";
    const auto i = static_cast<std::size_t>(f);
    const double max = report.max_activation.at(i);
    page += "[" + std::to_string(report.firing_counts.at(i)) + "," + (std::isfinite(max) ? html::number(max) : "null") + "]";
  }
  page += "]</script>\n<script>//<![CDATA[";
  page += detail::report_script();
  page += "//]]></script>\n</body>\n</html>\n";
  return page;
}

}  // namespace sae
