// Module pages' charts (Chart.js, shipped in the package). The page's JSON block maps a name
// to {type, labels, values, horizontal, percent, stacked, integer} (or several "series" of
// {label, values}); "integer": counts, whose axis has no ticks between whole numbers;
// the chart goes in the canvas "chart-<name>".
// A page with another JSON block of its own names this one's in the tag: data-block="…".
(function () {
  const block = document.getElementById((document.currentScript && document.currentScript.dataset.block) || "chart-data");
  if (!block || !window.Chart) return;
  const data = JSON.parse(block.textContent);
  Chart.defaults.font.family = '"Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", sans-serif';
  Chart.defaults.animation = false;
  const palette = ["#2f80ed", "#0f766e", "#f59e0b", "#b42318", "#9aa5b1", "#7c3aed", "#0891b2"];
  for (const [name, spec] of Object.entries(data)) {
    const el = document.getElementById("chart-" + name);
    if (!el) continue;
    const type = spec.type || "bar";
    const axis = spec.percent ? {ticks: {callback: (v) => v + "%"}, min: 0, max: 100}
      : {beginAtZero: true, ticks: spec.integer ? {precision: 0} : {}};
    if (spec.stacked) axis.stacked = true;
    const other = spec.stacked ? {stacked: true} : {};
    const series = spec.series || [{label: spec.label || "", values: spec.values}];
    new Chart(el, {
      type: type,
      data: {labels: spec.labels, datasets: series.map((s, i) => ({
        label: s.label, data: s.values,
        backgroundColor: type === "doughnut" ? palette : palette[i % palette.length],
        borderColor: palette[i % palette.length]}))},
      options: {
        responsive: true, maintainAspectRatio: false,
        indexAxis: spec.horizontal ? "y" : "x",
        // a bar chart's legend goes above it: at the side it takes the width the bars' names need
        plugins: {legend: {display: type === "doughnut" || series.length > 1, position: type === "doughnut" ? "right" : "top"}},
        scales: type === "doughnut" ? {} : (spec.horizontal ? {x: axis, y: other} : {y: axis, x: other}),
      },
    });
  }
})();
