// A line chart of a segment's members over time, drawn as inline SVG from
// its runs; a table of the same points follows it for screen readers and
// for reading exact values.
import { h, svg, fmtTime, num } from "./dom.js";

// membersChart(points, current): points are {time, members, id}, sorted
// or not; current is the id of the run to mark.
export function membersChart(points, current, title = "Members over time") {
  const pts = points.filter(p => p.time && !isNaN(new Date(p.time)) && p.members !== undefined)
    .map(p => ({ ...p, t: new Date(p.time).getTime() }))
    .sort((a, b) => a.t - b.t);
  const fig = h("figure", { class: "chart" });
  const id = `chart-${Math.random().toString(36).slice(2)}`;
  fig.append(h("figcaption", { id }, title));
  if (!pts.length) {
    fig.append(h("p", { class: "hint" }, "No finished run to chart yet."));
    return fig;
  }
  const W = 600, H = 220, L = 60, R = 20, T = 15, B = 40;
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
  const maxM = Math.max(...pts.map(p => p.members), 1);
  const x = t => (t1 === t0 ? L + (W - L - R) / 2 : L + (t - t0) / (t1 - t0) * (W - L - R));
  const y = m => T + (1 - m / maxM) * (H - T - B);
  const line = pts.map(p => `${x(p.t).toFixed(1)},${y(p.members).toFixed(1)}`).join(" ");
  const desc = `${pts.length} runs from ${fmtTime(pts[0].time)} to ${fmtTime(pts[pts.length - 1].time)}; ` +
    `members from ${num(pts[0].members)} to ${num(pts[pts.length - 1].members)}, at most ${num(maxM)}.`;
  fig.append(svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": id, "aria-describedby": `${id}-d` },
    svg("desc", { id: `${id}-d` }, desc),
    svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svg("text", { x: L - 6, y: T + 4, "text-anchor": "end" }, num(maxM)),
    svg("text", { x: L - 6, y: H - B, "text-anchor": "end" }, "0"),
    svg("text", { x: L, y: H - B + 16, "text-anchor": "start" }, fmtTime(pts[0].time)),
    pts.length > 1 ? svg("text", { x: W - R, y: H - B + 16, "text-anchor": "end" }, fmtTime(pts[pts.length - 1].time)) : null,
    svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, "run start (UTC)"),
    pts.length > 1 ? svg("polyline", { class: "line", points: line }) : null,
    pts.map(p => svg("circle", { class: p.id === current ? "point current" : "point", cx: x(p.t), cy: y(p.members), r: p.id === current ? 5 : 3.5 },
      svg("title", {}, `${fmtTime(p.time)}: ${num(p.members)} members${p.id === current ? " (this run)" : ""}`)))));
  fig.append(h("details", {},
    h("summary", {}, "The chart's data as a table"),
    h("table", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Run started"), h("th", { scope: "col" }, "Run"), h("th", { scope: "col", class: "num" }, "Members"))),
      h("tbody", {}, pts.map(p => h("tr", {}, h("td", {}, fmtTime(p.time)), h("td", {}, p.id === current ? `${p.id} (this run)` : p.id || ""), h("td", { class: "num" }, num(p.members))))))));
  return fig;
}
