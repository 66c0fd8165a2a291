// Dashboard charts (Chart.js, shipped in the package). Data comes from the page's JSON block.
(function () {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  Chart.defaults.font.family = '"Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", sans-serif';
  Chart.defaults.animation = false;
  const pct = {ticks: {callback: (v) => v + "%"}, min: 0, max: 100};
  const opts = (extra) => Object.assign({responsive: true, maintainAspectRatio: false, plugins: {legend: {display: false}}}, extra);
  const palette = ["#2f80ed", "#9aa5b1", "#0f766e", "#f59e0b", "#b42318"];

  const curve = data.curve;
  new Chart(document.getElementById("chart-curve"), {
    type: "line",
    data: {labels: curve.labels, datasets: Object.entries(curve.series).map(([name, values], i) => ({
      label: name, data: values, borderColor: palette[i], pointRadius: 0, borderWidth: i ? 1.5 : 2.5}))},
    options: opts({scales: {y: pct}, plugins: {legend: {display: true}, tooltip: {mode: "index", intersect: false}}}),
  });
  function bars(id, d, horizontal) {
    const el = document.getElementById(id);
    if (!el) return;
    new Chart(el, {
      type: "bar",
      data: {labels: d.labels, datasets: [{data: d.values, backgroundColor: palette[0]}]},
      options: opts(horizontal ? {indexAxis: "y", scales: {x: pct}} : {scales: {y: pct}}),
    });
  }
  bars("chart-towns", data.towns, true);
  bars("chart-types", data.types, false);
  bars("chart-sections", data.sections, true);
  new Chart(document.getElementById("chart-rules"), {
    type: "bar", data: {labels: data.rules.labels, datasets: [{data: data.rules.values, backgroundColor: palette[3]}]},
    options: opts({}),
  });
  if (document.getElementById("chart-channels")) new Chart(document.getElementById("chart-channels"), {
    type: "doughnut", data: {labels: data.channels.labels, datasets: [{data: data.channels.values, backgroundColor: palette}]},
    options: opts({plugins: {legend: {display: true, position: "right"}}}),
  });
})();
