//===--- FlamegraphScript.swift - the flame graph's embedded JavaScript ----===//
//
// A constant: nothing is ever interpolated into it. It reads the frames from the DOM (each
// `<g class="f">` carries its start and count in samples and its depth as `data-` attributes, its
// label as `<title>` text) and the geometry from `data-` attributes of the root `<svg>`:
//
// - hover: the details line shows "label — N samples (P%)";
// - click: zoom into the frame (its subtree fills the width, its ancestors fill it too, greyed,
//   everything else is hidden); "Reset Zoom" or a click on the root undoes it;
// - "Search" or Ctrl-F: prompt for a regular expression (a plain substring if it does not
//   compile), highlight the frames whose label matches and show "Matched: X%" of all samples,
//   nested matches counted once; an empty search or Escape clears it.
//
// It must never contain the CDATA terminator (checked by a test).
//
//===----------------------------------------------------------------------===//

let flamegraphScript = #"""
  (function () {
    'use strict';
    var svg = document.documentElement;
    function num(el, name) { return Number(el.getAttribute(name)); }
    var total = num(svg, 'data-total');
    var pad = num(svg, 'data-pad');
    var inner = num(svg, 'data-inner');
    var charWidth = num(svg, 'data-char-width');
    var minWidth = num(svg, 'data-min-width');
    var details = document.getElementById('details');
    var matched = document.getElementById('matched');
    var resetControl = document.getElementById('reset');
    var searchControl = document.getElementById('search');
    var frames = [];
    var term = '';

    function percent(n, digits) { return (100 * n / total).toFixed(digits); }
    function describe(f) {
      return f.label + ' \u2014 ' + f.n + (f.n === 1 ? ' sample' : ' samples') + ' (' + percent(f.n, 2) + '%)';
    }
    function fit(label, width) {
      var chars = Math.floor((width - 6) / charWidth);
      if (chars < 3) { return ''; }
      var scalars = Array.from(label);
      if (scalars.length <= chars) { return label; }
      return scalars.slice(0, chars - 2).join('') + '..';
    }
    function place(f, x, w) {
      f.rect.setAttribute('x', x.toFixed(2));
      f.rect.setAttribute('width', w.toFixed(2));
      f.text.setAttribute('x', (x + 3).toFixed(2));
      f.text.textContent = fit(f.label, w);
    }
    function show(f, visible) {
      if (visible) { f.g.classList.remove('hide'); } else { f.g.classList.add('hide'); }
    }

    function zoom(z) {
      if (z.d === 0) { unzoom(); return; }
      var scale = inner / z.n;
      frames.forEach(function (f) {
        var inside = f.s >= z.s && f.s + f.n <= z.s + z.n;
        var ancestor = f.d < z.d && f.s <= z.s && f.s + f.n >= z.s + z.n;
        f.g.classList.remove('anc');
        if (f.d >= z.d && inside) {
          var w = f.n * scale;
          show(f, w >= minWidth);
          place(f, pad + (f.s - z.s) * scale, w);
        } else if (ancestor) {
          show(f, true);
          f.g.classList.add('anc');
          place(f, pad, inner);
        } else {
          show(f, false);
        }
      });
      resetControl.classList.remove('hide');
    }
    function unzoom() {
      frames.forEach(function (f) {
        f.g.classList.remove('anc');
        show(f, true);
        place(f, f.x, f.w);
      });
      resetControl.classList.add('hide');
    }

    function search(wanted) {
      term = wanted;
      frames.forEach(function (f) { f.g.classList.remove('hit'); });
      if (!wanted) {
        matched.textContent = '';
        searchControl.textContent = 'Search';
        return;
      }
      var pattern = null;
      try { pattern = new RegExp(wanted); } catch (e) { pattern = null; }
      var hits = frames.filter(function (f) {
        return pattern ? pattern.test(f.label) : f.label.indexOf(wanted) >= 0;
      });
      hits.forEach(function (f) { f.g.classList.add('hit'); });
      // Frames nest or are disjoint: in start order (outer first), a frame that starts before the
      // end of the last counted one lies inside it.
      hits.sort(function (a, b) { return a.s - b.s || b.n - a.n; });
      var covered = 0;
      var end = -1;
      hits.forEach(function (f) {
        if (f.s >= end) { covered += f.n; end = f.s + f.n; }
      });
      matched.textContent = 'Matched: ' + percent(covered, 1) + '%';
      searchControl.textContent = 'Search (' + hits.length + ')';
    }
    function askSearch() {
      var wanted = window.prompt('Search frames (regular expression):', term);
      if (wanted !== null) { search(wanted); }
    }

    var groups = document.getElementById('frames').getElementsByTagName('g');
    for (var i = 0; i < groups.length; i++) {
      var g = groups[i];
      var rect = g.getElementsByTagName('rect')[0];
      var title = g.getElementsByTagName('title')[0];
      var f = {
        g: g, rect: rect, text: g.getElementsByTagName('text')[0], title: title,
        label: title.textContent,
        s: num(g, 'data-s'), n: num(g, 'data-n'), d: num(g, 'data-d'),
        x: num(rect, 'x'), w: num(rect, 'width')
      };
      title.textContent = describe(f);
      frames.push(f);
      g.addEventListener('mouseover', (function (f) {
        return function () { details.textContent = describe(f); };
      })(f));
      g.addEventListener('mouseout', function () { details.textContent = '\u00a0'; });
      g.addEventListener('click', (function (f) {
        return function () { zoom(f); };
      })(f));
    }
    resetControl.addEventListener('click', unzoom);
    searchControl.addEventListener('click', askSearch);
    window.addEventListener('keydown', function (e) {
      if ((e.ctrlKey || e.metaKey) && (e.key === 'f' || e.key === 'F')) {
        e.preventDefault();
        askSearch();
      } else if (e.key === 'Escape') {
        search('');
      }
    });
  })();

  """#
