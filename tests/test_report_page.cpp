// tests/test_report_page.cpp: what sae_report writes: the HTML page (strict
// XML, self-contained, every piece of data escaped), the JSON statistics, and
// the pieces they are made of (escaping, training-log reading).
// The statistics themselves are tested in test_report.cpp; the page in a real
// browser by tests/report/browser_test.sh.
#include <cctype>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sae/report.hpp>

#include "report/planted_data.hpp"
#include "temp_dir.hpp"

namespace {

namespace planted = sae_test::planted;
using sae::Index;

// ---------------------------------------------------------------------------
// A strict well-formedness check, as an XML parser does it: one root element,
// every element closed in order, attribute values quoted and free of '<',
// no duplicate attributes, '&' only in the five predefined entities or
// character references, no "]]>" in text, comments / CDATA / processing
// instructions terminated, only a DOCTYPE before the root, and the text
// well-formed UTF-8 without the characters XML 1.0 forbids.
// Returns "" when the document passes, else the first problem and its offset.
std::string xml_problem(const std::string& doc) {
  std::size_t i = 0;
  const auto fail = [&](const std::string& what) { return what + " at byte " + std::to_string(i); };
  // Characters first: UTF-8, and XML's Char production.
  for (std::size_t k = 0; k < doc.size();) {
    std::uint32_t c = 0;
    const std::size_t n = sae::html::detail::decode_utf8(doc, k, c);
    if (n == 0) return "invalid UTF-8 at byte " + std::to_string(k);
    const bool allowed = c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
                         (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
    if (!allowed) return "character U+" + std::to_string(c) + " not allowed in XML at byte " + std::to_string(k);
    k += n;
  }
  const auto is_name_start = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; };
  const auto is_name_char = [&](char c) {
    return is_name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  };
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  const auto starts = [&](const char* s) { return doc.compare(i, std::char_traits<char>::length(s), s) == 0; };
  const auto read_name = [&]() {
    const std::size_t begin = i;
    if (i >= doc.size() || !is_name_start(doc[i])) return std::string();
    while (i < doc.size() && is_name_char(doc[i])) ++i;
    return doc.substr(begin, i - begin);
  };
  // An entity or character reference at doc[i] == '&'.
  const auto entity_ok = [&]() {
    const std::size_t end = doc.find(';', i);
    if (end == std::string::npos || end - i > 12) return false;
    const std::string name = doc.substr(i + 1, end - i - 1);
    i = end + 1;
    if (name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos") return true;
    if (name.size() >= 2 && name[0] == '#') {
      const bool hex = name[1] == 'x';
      const std::string digits = name.substr(hex ? 2 : 1);
      if (digits.empty()) return false;
      for (const char c : digits)
        if (!(hex ? std::isxdigit(static_cast<unsigned char>(c)) : std::isdigit(static_cast<unsigned char>(c))))
          return false;
      const unsigned long code = std::stoul(digits, nullptr, hex ? 16 : 10);
      return code == 0x9 || code == 0xA || code == 0xD || (code >= 0x20 && code <= 0xD7FF) ||
             (code >= 0xE000 && code <= 0xFFFD) || (code >= 0x10000 && code <= 0x10FFFF);
    }
    return false;
  };

  std::vector<std::string> open;
  bool root_seen = false, root_closed = false;
  while (i < doc.size()) {
    const char c = doc[i];
    if (c != '<') {
      if (c == '&') {
        if (!entity_ok()) return fail("bad entity reference");
        continue;
      }
      if (starts("]]>")) return fail("']]>' in text");
      if (open.empty() && !is_space(c)) return fail("text outside the root element");
      ++i;
      continue;
    }
    if (starts("<!--")) {
      const std::size_t end = doc.find("-->", i + 4);
      if (end == std::string::npos) return fail("unterminated comment");
      if (doc.substr(i + 4, end - i - 4).find("--") != std::string::npos) return fail("'--' inside a comment");
      i = end + 3;
    } else if (starts("<![CDATA[")) {
      if (open.empty()) return fail("CDATA outside the root element");
      const std::size_t end = doc.find("]]>", i);
      if (end == std::string::npos) return fail("unterminated CDATA section");
      i = end + 3;
    } else if (starts("<!DOCTYPE")) {
      if (root_seen) return fail("DOCTYPE after the root element");
      const std::size_t end = doc.find('>', i);
      if (end == std::string::npos) return fail("unterminated DOCTYPE");
      i = end + 1;
    } else if (starts("<!")) {
      return fail("unknown markup declaration");
    } else if (starts("<?")) {
      const std::size_t end = doc.find("?>", i);
      if (end == std::string::npos) return fail("unterminated processing instruction");
      i = end + 2;
    } else if (starts("</")) {
      i += 2;
      const std::string name = read_name();
      while (i < doc.size() && is_space(doc[i])) ++i;
      if (i >= doc.size() || doc[i] != '>') return fail("malformed end tag");
      ++i;
      if (open.empty() || open.back() != name)
        return fail("end tag </" + name + "> does not close <" + (open.empty() ? std::string() : open.back()) + ">");
      open.pop_back();
      if (open.empty()) root_closed = true;
    } else {
      ++i;
      const std::string name = read_name();
      if (name.empty()) return fail("'<' that starts no tag");
      if (open.empty() && (root_seen || root_closed)) return fail("a second root element <" + name + ">");
      std::set<std::string> attributes;
      bool self_closed = false;
      for (;;) {
        const std::size_t before_space = i;
        while (i < doc.size() && is_space(doc[i])) ++i;
        if (i >= doc.size()) return fail("unterminated tag <" + name + ">");
        if (doc[i] == '>') {
          ++i;
          break;
        }
        if (starts("/>")) {
          i += 2;
          self_closed = true;
          break;
        }
        if (i == before_space) return fail("no space before an attribute of <" + name + ">");
        const std::string attribute = read_name();
        if (attribute.empty()) return fail("malformed attribute in <" + name + ">");
        if (!attributes.insert(attribute).second) return fail("duplicate attribute " + attribute);
        while (i < doc.size() && is_space(doc[i])) ++i;
        if (i >= doc.size() || doc[i] != '=') return fail("attribute " + attribute + " without a value");
        ++i;
        while (i < doc.size() && is_space(doc[i])) ++i;
        if (i >= doc.size() || (doc[i] != '"' && doc[i] != '\'')) return fail("unquoted attribute " + attribute);
        const char quote = doc[i++];
        while (i < doc.size() && doc[i] != quote) {
          if (doc[i] == '<') return fail("'<' in the value of " + attribute);
          if (doc[i] == '&') {
            if (!entity_ok()) return fail("bad entity in the value of " + attribute);
          } else {
            ++i;
          }
        }
        if (i >= doc.size()) return fail("unterminated value of " + attribute);
        ++i;
      }
      root_seen = true;
      if (!self_closed) open.push_back(name);
      else if (open.empty()) root_closed = true;
    }
  }
  if (!open.empty()) return "element <" + open.back() + "> is never closed";
  if (!root_seen) return "no root element";
  return "";
}

// What a self-contained page must not contain anywhere (the page is checked whole).
const std::vector<std::string>& forbidden_in_page() {
  static const std::vector<std::string> forbidden = {"http://", "https://", "<script src", "<link", "@import",
                                                     "url(", "<iframe", "<img", "<object", "<embed"};
  return forbidden;
}

struct Rendered {
  sae::FeatureReport report;
  std::string page;
};

// The planted report (latent 3 and the three that fire most), with or without tokens and vocabulary.
Rendered render_planted(const sae_test::TempDir& dir, bool with_tokens, bool with_vocab,
                        const sae::TrainingLog* training = nullptr) {
  const planted::Files files = planted::write_files(dir.path().string());
  const sae::NpyRows acts(files.acts);
  const sae::Vocabulary vocab(planted::pieces());
  const sae::TokenTable tokens(files.tokens, acts.rows(), vocab.size());
  sae::FeatureReportOptions options;
  options.chunk_rows = 64;
  options.latents = {planted::kPlantedLatent, planted::kDenseLatent, planted::kDeadLatent, 0, 1};
  Rendered out;
  out.report = sae::build_feature_report(planted::model(), acts, options, with_tokens ? &tokens : nullptr);
  sae::HtmlReportOptions html;
  html.title = "Planted <test> & \"report\"";
  html.model_description = "planted model (in memory)";
  html.vocabulary = with_vocab ? &vocab : nullptr;
  html.training = training;
  out.page = sae::render_report_html(out.report, html);
  return out;
}

}  // namespace

TEST_CASE("report: the XML checker itself accepts XHTML and rejects what parsers reject", "[report][xml]") {
  CHECK(xml_problem("<!DOCTYPE html>\n<html><body a=\"1\" b='&amp;'><br/>x &lt; y<![CDATA[ <&> ]]></body></html>\n")
            .empty());
  CHECK_FALSE(xml_problem("<a><b></a></b>").empty());
  CHECK_FALSE(xml_problem("<a x=1></a>").empty());
  CHECK_FALSE(xml_problem("<a x=\"<\"></a>").empty());
  CHECK_FALSE(xml_problem("<a>&nbsp;</a>").empty());
  CHECK_FALSE(xml_problem("<a>x & y</a>").empty());
  CHECK_FALSE(xml_problem("<a>]]></a>").empty());
  CHECK_FALSE(xml_problem("<a><br></a>").empty());
  CHECK_FALSE(xml_problem("<a></a><b></b>").empty());
  CHECK_FALSE(xml_problem("<a x=\"1\" x=\"2\"></a>").empty());
  CHECK_FALSE(xml_problem("<a>\x01</a>").empty());
  CHECK_FALSE(xml_problem("<a>\xff</a>").empty());
  CHECK_FALSE(xml_problem("<a>&#0;</a>").empty());
  CHECK_FALSE(xml_problem("<a><!-- x -- y --></a>").empty());
}

TEST_CASE("report: text from data is escaped for HTML and XML alike", "[report][xml]") {
  using sae::html::attribute;
  using sae::html::text;
  CHECK(text("a<b>&c") == "a&lt;b&gt;&amp;c");
  CHECK(text("]]>") == "]]&gt;");
  CHECK(text("\"q'") == "\"q'");
  CHECK(attribute("\"q'\t\n") == "&quot;q&#39;&#9;&#10;");
  CHECK(text("\x01x\x1f") == "\xE2\x90\x81x\xE2\x90\x9F");  // control pictures
  CHECK(text("\x7f") == "\xE2\x90\xA1");
  CHECK(text("\r") == "&#13;");
  CHECK(text("\xff" "a\xC3") == "\xEF\xBF\xBD" "a\xEF\xBF\xBD");      // invalid UTF-8
  CHECK(text("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");             // overlong '/'
  CHECK(text("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  CHECK(text("\xC2\x85\xEF\xBF\xBE") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // U+0085, U+FFFE
  CHECK(text("\xE2\x96\x81the \xF0\x9F\x98\x80") == "\xE2\x96\x81the \xF0\x9F\x98\x80");  // kept as is
  CHECK(text("see http://x.y/z") == "see http:&#47;&#47;x.y/z");
  CHECK(text("URL(a) curl(b)") == "URL&#40;a) curl&#40;b)");
  CHECK(text("@import") == "&#64;import");
  CHECK(sae::html::number(0.0123456) == "0.01235");
  CHECK(sae::html::number(std::numeric_limits<double>::quiet_NaN()) == "n/a");
  CHECK(sae::html::percent(0.25) == "25%");
  for (const std::string& piece : planted::pieces()) {
    INFO(piece);
    CHECK(xml_problem("<a t=\"" + attribute(piece) + "\">" + text(piece) + "</a>").empty());
  }
}

TEST_CASE("report: the page is strict XML, self-contained, and shows the planted latent", "[report][xml]") {
  sae_test::TempDir dir("sae_report_page");
  const std::string log_path = dir.write("metrics.jsonl",
                                         "{\"step\": 10, \"loss\": 5.0, \"l0\": 40, \"dead_fraction\": 0.5}\n"
                                         "\n"
                                         "{\"step\": 20, \"loss\": 0.01, \"l0\": 20, \"dead_fraction\": null}\n"
                                         "{\"step\": 30, \"loss\": 0.005, \"l0\": 18.5, \"dead_fraction\": 0.1}\n");
  const sae::TrainingLog log = sae::read_training_log(log_path);
  const Rendered r = render_planted(dir, true, true, &log);
  const std::string& page = r.page;

  INFO(page.substr(0, 400));
  CHECK(xml_problem(page) == "");
  for (const std::string& bad : forbidden_in_page()) {
    INFO(bad);
    CHECK(page.find(bad) == std::string::npos);
  }
  // Every card has its anchor; the index links to each.
  for (const Index latent : {planted::kPlantedLatent, planted::kDenseLatent, planted::kDeadLatent, Index{0}, Index{1}}) {
    CHECK(page.find("<article class=\"card\" id=\"latent-" + std::to_string(latent) + "\"") != std::string::npos);
    CHECK(page.find("<a href=\"#latent-" + std::to_string(latent) + "\">") != std::string::npos);
  }
  // The planted card lists the five planted rows, strongest first.
  const std::size_t card = page.find("id=\"latent-3\"");
  const std::size_t card_end = page.find("</article>", card);
  std::size_t at = card;
  for (const Index row : planted::planted_rows()) {
    const std::size_t found = page.find(", row " + std::to_string(row) + "</span>", at);
    CHECK(found < card_end);
    at = found == std::string::npos ? at : found;
  }
  // Pieces arrive escaped, never raw.
  CHECK(page.find("&lt;b&gt;bold&lt;/b&gt;") != std::string::npos);
  CHECK(page.find("<b>") == std::string::npos);
  std::size_t script_ends = 0;  // the page's own two scripts (data, code), none from the "</script>" piece
  for (std::size_t p = page.find("</script>"); p != std::string::npos; p = page.find("</script>", p + 1)) ++script_ends;
  CHECK(script_ends == 2);
  CHECK(page.find("\"q'") != std::string::npos);
  CHECK(page.find("Planted &lt;test&gt; &amp; \"report\"") != std::string::npos);
  CHECK(page.find("data-report-ready") != std::string::npos);  // the script marks success
  CHECK(page.find("id=\"search\"") != std::string::npos);
  CHECK(page.find("Content-Security-Policy") != std::string::npos);
  // Plots: the density histogram, one activation histogram per card, three curves (FVU absent).
  std::size_t svgs = 0;
  for (std::size_t p = page.find("<svg"); p != std::string::npos; p = page.find("<svg", p + 1)) ++svgs;
  CHECK(svgs == 1 + 5 + 3);
  CHECK(page.find("Not in the log: FVU.") != std::string::npos);
}

TEST_CASE("report: pages without tokens or vocabulary are strict XML too", "[report][xml]") {
  sae_test::TempDir dir("sae_report_page_bare");
  const Rendered ids = render_planted(dir, true, false);
  CHECK(xml_problem(ids.page) == "");
  CHECK(ids.page.find(">#" + std::to_string(planted::token_id(78)) + " </span>") != std::string::npos);
  const Rendered rows = render_planted(dir, false, false);
  CHECK(xml_problem(rows.page) == "");
  CHECK(rows.page.find(">row 78 </span>") != std::string::npos);
  CHECK(rows.page.find("No metrics file given") != std::string::npos);

  // A hand-built vocabulary may hold bytes that are not UTF-8; the page replaces them.
  const planted::Files files = planted::write_files(dir.path().string());
  const sae::NpyRows acts(files.acts);
  std::vector<std::string> pieces = planted::pieces();
  pieces[planted::token_id(78)] = "\xff\xfe<\x80>";
  const sae::Vocabulary vocab(pieces);
  const sae::TokenTable tokens(files.tokens, acts.rows(), vocab.size());
  sae::FeatureReportOptions options;
  options.latents = {planted::kPlantedLatent};
  const sae::FeatureReport report = sae::build_feature_report(planted::model(), acts, options, &tokens);
  sae::HtmlReportOptions html;
  html.vocabulary = &vocab;
  const std::string page = sae::render_report_html(report, html);
  CHECK(xml_problem(page) == "");
  CHECK(page.find("\xEF\xBF\xBD\xEF\xBF\xBD&lt;\xEF\xBF\xBD&gt;") != std::string::npos);
  const nlohmann::json json = nlohmann::json::parse(sae::report_json_text(sae::report_to_json(report, &vocab)));
  const auto& context = json["cards"][0]["contexts"][0];
  CHECK(context["row"] == 78);
  CHECK(context["tokens"][context["focus"].get<std::size_t>()]["piece"].is_string());
}

TEST_CASE("report: the JSON statistics parse and say what the page says", "[report]") {
  sae_test::TempDir dir("sae_report_json");
  const std::string log_path = dir.write("m.jsonl", "{\"step\": 1, \"loss\": 2.0, \"fvu\": 0.5}\n");
  const sae::TrainingLog log = sae::read_training_log(log_path);
  const Rendered r = render_planted(dir, true, true, &log);
  const sae::Vocabulary vocab(planted::pieces());
  const std::string text = sae::report_json_text(sae::report_to_json(r.report, &vocab, &log));
  const nlohmann::json j = nlohmann::json::parse(text);  // throws if it is not JSON

  CHECK(j["format"] == "sae.report.v1");
  CHECK(j["summary"]["rows"] == planted::kRows);
  CHECK(j["summary"]["dict_size"] == planted::kLatents);
  CHECK(j["summary"]["architecture"] == "relu");
  CHECK(j["summary"]["k"].is_null());
  CHECK(j["summary"]["fvu"].get<double>() == Approx(r.report.summary.fvu));
  CHECK(j["summary"]["dead_fraction"].get<double>() == Approx(1.0 / 16));
  std::int64_t latents = j["density"]["never_fired"].get<std::int64_t>();
  for (const auto& c : j["density"]["counts"]) latents += c.get<std::int64_t>();
  CHECK(latents == planted::kLatents);
  CHECK(j["latents"]["firing_count"].size() == static_cast<std::size_t>(planted::kLatents));
  CHECK(j["latents"]["firing_count"][planted::kDenseLatent] == planted::kRows);
  CHECK(j["latents"]["frequency"][planted::kDenseLatent].get<double>() == 1.0);

  const auto& card = j["cards"][0];
  CHECK(card["latent"] == planted::kPlantedLatent);
  std::vector<Index> rows;
  for (const auto& context : card["contexts"]) rows.push_back(context["row"].get<Index>());
  CHECK(rows == planted::planted_rows());
  std::int64_t in_histogram = 0;
  for (const auto& c : card["histogram"]["counts"]) in_histogram += c.get<std::int64_t>();
  CHECK(in_histogram == card["firing_count"].get<std::int64_t>());
  const auto& first = card["contexts"][0];
  const auto& focus = first["tokens"][first["focus"].get<std::size_t>()];
  CHECK(focus["row"] == 78);
  CHECK(focus["token_id"] == planted::token_id(78));
  CHECK(focus["piece"] == planted::pieces()[static_cast<std::size_t>(planted::token_id(78))]);
  CHECK(card["neighbours"][0]["latent"] == planted::kTwinLatent);

  CHECK(j["training"]["curves"]["loss"]["value"][0] == 2.0);
  CHECK(j["training"]["curves"]["FVU"]["key"] == "fvu");
  CHECK(j["training"]["absent"] == nlohmann::json({"L0", "dead fraction"}));
}

TEST_CASE("report: training logs read the curves and skip the gaps", "[report]") {
  sae_test::TempDir dir("sae_report_log");
  const sae::TrainingLog log = sae::read_training_log(
      dir.write("m.jsonl", "{\"step\": 10, \"loss\": 1.5, \"l0\": 30, \"dead_fraction\": null}\n"
                           "{\"loss\": 1.0, \"L0\": 25, \"dead_fraction\": 0.25}\n"));
  CHECK(log.lines == 2);
  REQUIRE(log.curves.size() == 3);
  CHECK(log.curves[0].label == "loss");
  CHECK(log.curves[0].step == std::vector<double>{10, 2});  // no "step": the line number
  CHECK(log.curves[1].label == "L0");
  CHECK(log.curves[1].value == std::vector<double>{30, 25});
  CHECK(log.curves[2].label == "dead fraction");
  CHECK(log.curves[2].value == std::vector<double>{0.25});
  CHECK(log.absent == std::vector<std::string>{"FVU"});

  CHECK_THROWS_WITH(sae::read_training_log(dir.write("bad.jsonl", "{\"loss\": 1}\n[1, 2\n")),
                    Catch::Contains("bad.jsonl:2") && Catch::Contains("not a JSON object"));
  CHECK_THROWS_WITH(sae::read_training_log(dir.file("none.jsonl")), Catch::Contains("cannot open"));
}

TEST_CASE("report: SVG charts are well-formed for empty, flat and ordinary data", "[report][xml]") {
  const sae::svg::PlotOptions options{200, 120, "t <&>", "x", "y"};
  for (const std::string& svg :
       {sae::svg::bar_chart({}, options), sae::svg::bar_chart({{0, 1, 0, "zero"}, {1, 2, 3, "<three>"}}, options),
        sae::svg::line_chart({}, {}, options), sae::svg::line_chart({1, 2, 3}, {5, 5, 5}, options),
        sae::svg::line_chart({1, 2, 3}, {1e-3, 1, NAN}, options, /*log_y=*/true)}) {
    INFO(svg);
    CHECK(xml_problem(svg) == "");
    CHECK(svg.find("nan") == std::string::npos);
    CHECK(svg.find("inf") == std::string::npos);
  }
}
