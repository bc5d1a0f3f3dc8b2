// sae/report/svg_plot.hpp: small inline SVG charts for the report page.
//
//   std::vector<sae::svg::Bar> bars = {{-3.0, -2.9, 12, "10^-3.0 .. 10^-2.9: 12 latents"}, ...};
//   page += sae::svg::bar_chart(bars, {480, 200, "Feature density", "log10 firing frequency", "latents"});
//   page += sae::svg::line_chart(steps, losses, {320, 180, "loss", "step", "loss"});
//
// Self-contained markup (no scripts, no external references), styled by the
// page's CSS through class names: .axis, .bar, .line, .tick. Every bar has a
// <title>, which browsers show on hover. All text from data is escaped
// (sae/report/html_text.hpp). Coordinates are written with one decimal, so
// the output does not depend on the platform's float formatting beyond that.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "html_text.hpp"

namespace sae {
namespace svg {

struct PlotOptions {
  int width = 480;
  int height = 200;
  std::string title;    ///< the chart's accessible name (aria-label and <title>)
  std::string x_label;
  std::string y_label;
};

/// One bar: covers [left, right) on the x axis, `height` tall.
struct Bar {
  double left = 0, right = 0;
  double height = 0;
  std::string tooltip;
};

namespace detail {

inline std::string coordinate(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", v);
  return buffer;
}

// The plot area inside the margins (room for tick labels on the left and below).
struct Frame {
  double left, top, width, height;
  Frame(const PlotOptions& o)  // NOLINT: implicit on purpose, a frame is a view of the options
      : left(52), top(22), width(std::max(10.0, o.width - 52.0 - 12.0)), height(std::max(10.0, o.height - 22.0 - 38.0)) {}
  double x(double t) const { return left + t * width; }            // t in [0, 1]
  double y(double t) const { return top + height - t * height; }   // t in [0, 1], 0 at the bottom
};

inline std::string open_svg(const PlotOptions& o) {
  const std::string name = html::attribute(o.title);
  return "<svg class=\"plot\" width=\"" + std::to_string(o.width) + "\" height=\"" + std::to_string(o.height) +
         "\" viewBox=\"0 0 " + std::to_string(o.width) + " " + std::to_string(o.height) + "\" role=\"img\" aria-label=\"" +
         name + "\"><title>" + html::text(o.title) + "</title>";
}

inline std::string text_at(double x, double y, const std::string& text, const char* anchor, const char* css = "tick") {
  return "<text class=\"" + std::string(css) + "\" x=\"" + coordinate(x) + "\" y=\"" + coordinate(y) +
         "\" text-anchor=\"" + anchor + "\">" + html::text(text) + "</text>";
}

inline std::string axes(const Frame& f, const PlotOptions& o) {
  std::string out;
  out += "<line class=\"axis\" x1=\"" + coordinate(f.left) + "\" y1=\"" + coordinate(f.y(0)) + "\" x2=\"" +
         coordinate(f.x(1)) + "\" y2=\"" + coordinate(f.y(0)) + "\"/>";
  out += "<line class=\"axis\" x1=\"" + coordinate(f.left) + "\" y1=\"" + coordinate(f.top) + "\" x2=\"" +
         coordinate(f.left) + "\" y2=\"" + coordinate(f.y(0)) + "\"/>";
  out += text_at(f.x(0.5), f.top + f.height + 32, o.x_label, "middle", "label");
  // The y label sits above the axis, left-aligned, so it never overlaps the tick labels.
  out += text_at(4, 12, o.y_label, "start", "label");
  return out;
}

// Tick labels under the x axis at `count` evenly spaced values of [lo, hi].
inline std::string x_ticks(const Frame& f, double lo, double hi, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    const double t = count == 1 ? 0.0 : static_cast<double>(i) / (count - 1);
    const double x = f.x(t);
    out += "<line class=\"axis\" x1=\"" + coordinate(x) + "\" y1=\"" + coordinate(f.y(0)) + "\" x2=\"" + coordinate(x) +
           "\" y2=\"" + coordinate(f.y(0) + 4) + "\"/>";
    out += text_at(x, f.y(0) + 16, html::number(lo + t * (hi - lo), 3), i == 0 ? "start" : i == count - 1 ? "end" : "middle");
  }
  return out;
}

// Tick labels left of the y axis; `label(t)` gives the text at height t in [0, 1].
template <typename Label>
std::string y_ticks(const Frame& f, int count, Label label) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    const double t = count == 1 ? 0.0 : static_cast<double>(i) / (count - 1);
    const double y = f.y(t);
    out += "<line class=\"axis\" x1=\"" + coordinate(f.left - 4) + "\" y1=\"" + coordinate(y) + "\" x2=\"" +
           coordinate(f.left) + "\" y2=\"" + coordinate(y) + "\"/>";
    out += text_at(f.left - 6, y + 4, label(t), "end");
  }
  return out;
}

}  // namespace detail

/// A histogram: bars side by side over [first left, last right], heights from 0.
inline std::string bar_chart(const std::vector<Bar>& bars, const PlotOptions& options) {
  const detail::Frame f(options);
  std::string out = detail::open_svg(options);
  double lo = 0, hi = 1, top = 0;
  if (!bars.empty()) {
    lo = bars.front().left;
    hi = bars.front().right;
    for (const Bar& b : bars) {
      lo = std::min(lo, b.left);
      hi = std::max(hi, b.right);
      top = std::max(top, b.height);
    }
  }
  if (!(hi > lo)) hi = lo + 1;
  if (!(top > 0)) top = 1;
  for (const Bar& b : bars) {
    const double x0 = f.x((b.left - lo) / (hi - lo)), x1 = f.x((b.right - lo) / (hi - lo));
    const double y = f.y(b.height / top);
    // A bar of height 0 still gets a hover target (a transparent rect), so every bin has its tooltip.
    out += "<rect class=\"" + std::string(b.height > 0 ? "bar" : "bar empty") + "\" x=\"" + detail::coordinate(x0) +
           "\" y=\"" + detail::coordinate(b.height > 0 ? y : f.top) + "\" width=\"" +
           detail::coordinate(std::max(0.5, x1 - x0 - 0.5)) + "\" height=\"" +
           detail::coordinate(b.height > 0 ? std::max(0.5, f.y(0) - y) : f.height) + "\"><title>" +
           html::text(b.tooltip) + "</title></rect>";
  }
  out += detail::axes(f, options);
  out += detail::x_ticks(f, lo, hi, 5);
  out += detail::y_ticks(f, 3, [&](double t) { return html::number(t * top, 3); });
  return out + "</svg>";
}

/// A line through (x[i], y[i]) in order; non-finite points are skipped. With
/// log_y the y axis is log10 (points <= 0 skipped). Long series are thinned
/// to at most ~1200 points (every n-th, and the last).
inline std::string line_chart(const std::vector<double>& x, const std::vector<double>& y, const PlotOptions& options,
                              bool log_y = false) {
  const detail::Frame f(options);
  std::vector<double> px, py;
  const std::size_t n = std::min(x.size(), y.size());
  const std::size_t stride = std::max<std::size_t>(1, (n + 1199) / 1200);
  for (std::size_t i = 0; i < n; ++i) {
    if (i % stride != 0 && i + 1 != n) continue;
    const double yv = log_y ? (y[i] > 0 ? std::log10(y[i]) : NAN) : y[i];
    if (!std::isfinite(x[i]) || !std::isfinite(yv)) continue;
    px.push_back(x[i]);
    py.push_back(yv);
  }
  std::string out = detail::open_svg(options);
  double x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  if (!px.empty()) {
    x_lo = *std::min_element(px.begin(), px.end());
    x_hi = *std::max_element(px.begin(), px.end());
    y_lo = *std::min_element(py.begin(), py.end());
    y_hi = *std::max_element(py.begin(), py.end());
  }
  if (!(x_hi > x_lo)) x_hi = x_lo + 1;
  if (!(y_hi > y_lo)) {  // a flat line (only possible with points): centre it
    const double half = 0.5 * (std::abs(y_lo) + 1);
    y_hi = y_lo + half;
    y_lo -= half;
  }
  std::string points;
  for (std::size_t i = 0; i < px.size(); ++i) {
    if (i > 0) points += ' ';
    points += detail::coordinate(f.x((px[i] - x_lo) / (x_hi - x_lo))) + "," +
              detail::coordinate(f.y((py[i] - y_lo) / (y_hi - y_lo)));
  }
  if (!points.empty()) out += "<polyline class=\"line\" points=\"" + points + "\"/>";
  out += detail::axes(f, options);
  out += detail::x_ticks(f, x_lo, x_hi, 5);
  out += detail::y_ticks(f, 3, [&](double t) {
    const double v = y_lo + t * (y_hi - y_lo);
    return html::number(log_y ? std::pow(10.0, v) : v, 3);
  });
  return out + "</svg>";
}

}  // namespace svg
}  // namespace sae
