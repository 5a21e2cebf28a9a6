// Every element with class "chart" and a data-series attribute becomes a uPlot chart (the
// library is vendored: /assets/uPlot.iife.min.js). data-series is JSON:
// {"x": [unix seconds…], "names": [series…], "values": [[…], …], "unit": "per hour",
//  "steps": false, "range": [min, max] and "x_range": [from, to] (optional, the axes' spans)}
(function () {
  "use strict";
  if (typeof uPlot === "undefined") return;
  var colours = ["#a4161a", "#0b6e4f", "#1d4ed8", "#7c3aed"];
  document.querySelectorAll(".chart[data-series]").forEach(function (el) {
    var s = JSON.parse(el.dataset.series);
    var series = [{}].concat(s.names.map(function (name, i) {
      var one = { label: name, stroke: colours[i % colours.length], width: 2 };
      if (s.steps) one.paths = uPlot.paths.stepped({ align: 1 });
      return one;
    }));
    var width = function () { return Math.max(280, el.clientWidth - 16); };
    var plot = new uPlot({ width: width(), height: 220, series: series,
      axes: [{}, { label: s.unit || "" }],
      scales: {
        x: s.x_range ? { time: true, range: s.x_range } : { time: true },
        y: s.range ? { range: s.range } : {}
      } },
      [s.x].concat(s.values), el);
    window.addEventListener("resize", function () { plot.setSize({ width: width(), height: 220 }); });
  });
})();
