// Pictograms beside the Japanese words for signers (JSL has no written form).
// Drawn as inline SVG from simple shapes, so they look the same on every
// tablet whatever fonts it has (emoji fonts are often missing). Decoration
// for the eye: aria-hidden, the Japanese sentence carries the meaning.

const SHAPES = {
  call: [["path", { d: "M5 4h4l2 5-2.5 1.5a11 11 0 0 0 5 5L15 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2" }]],
  clock: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M12 7v5l3 3" }]],
  line: [["circle", { cx: 6, cy: 7, r: 2.5 }], ["circle", { cx: 13, cy: 7, r: 2.5 }], ["path", { d: "M3 20v-5a3 3 0 0 1 6 0v5M10 20v-5a3 3 0 0 1 6 0v5M18 12h4M20 10l2 2-2 2" }]],
  next: [["path", { d: "M4 12h14M13 6l6 6-6 6" }]],
  none: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M7 12h10" }]],
  hand: [["path", { d: "M7 11V5.5a1.5 1.5 0 0 1 3 0V11M10 10V4.5a1.5 1.5 0 0 1 3 0V10M13 10V5.5a1.5 1.5 0 0 1 3 0V12M16 11V8.5a1.5 1.5 0 0 1 3 0V14a7 7 0 0 1-7 7h-1a6 6 0 0 1-5-3l-2.5-4.5a1.5 1.5 0 0 1 2.6-1.5L7 13" }]],
  mic: [["rect", { x: 9, y: 3, width: 6, height: 11, rx: 3 }], ["path", { d: "M5 11a7 7 0 0 0 14 0M12 18v3" }]],
  camera: [["rect", { x: 3, y: 7, width: 18, height: 13, rx: 2 }], ["circle", { cx: 12, cy: 13.5, r: 3.5 }], ["path", { d: "M8 7l2-3h4l2 3" }]],
  eye: [["path", { d: "M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12z" }], ["circle", { cx: 12, cy: 12, r: 3 }]],
  eyeOff: [["path", { d: "M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12zM4 4l16 16" }]],
  pencil: [["path", { d: "M4 20l1-5L16 4l4 4L9 19l-5 1zM14 6l4 4" }]],
  send: [["path", { d: "M3 11l18-8-7 18-3-7-8-3z" }]],
  cross: [["path", { d: "M6 6l12 12M18 6L6 18" }]],
  back: [["path", { d: "M9 5L4 10l5 5M4 10h10a6 6 0 0 1 0 12h-3" }]],
  warning: [["path", { d: "M12 3l10 18H2L12 3zM12 10v5M12 18v.5" }]],
  network: [["path", { d: "M2 9a15 15 0 0 1 20 0M5 12.5a10 10 0 0 1 14 0M8.5 16a5 5 0 0 1 7 0M12 19.5v.5" }]],
  check: [["path", { d: "M4 12l5 5L20 6" }]],
  star: [["path", { d: "M12 3l2.8 5.8 6.2.9-4.5 4.4 1 6.2L12 17.4l-5.5 2.9 1-6.2L3 9.7l6.2-.9L12 3z" }]],
  wave: [["path", { d: "M7 11V5.5a1.5 1.5 0 0 1 3 0V11M10 10V4.5a1.5 1.5 0 0 1 3 0V10M13 10V5.5a1.5 1.5 0 0 1 3 0V12M16 11V8.5a1.5 1.5 0 0 1 3 0V14a7 7 0 0 1-7 7h-1a6 6 0 0 1-5-3l-2.5-4.5M3 5a4 4 0 0 1 2-3M20 3a4 4 0 0 1 2 3" }]],
  // The rating faces, from very unhappy (1) to very happy (5).
  face1: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M8.5 9.5l1.5 1M15.5 9.5l-1.5 1M8 17q4-4.5 8 0" }]],
  face2: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M9 10v.5M15 10v.5M8.5 16.5q3.5-2.2 7 0" }]],
  face3: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M9 10v.5M15 10v.5M8.5 15.5h7" }]],
  face4: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M9 10v.5M15 10v.5M8.5 14.5q3.5 2.5 7 0" }]],
  face5: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M8 10q1-1.5 2 0M14 10q1-1.5 2 0M7.5 13.5q4.5 5.5 9 0z" }]],
  building: [["path", { d: "M4 21V5l8-3 8 3v16M2 21h20M9 21v-5h6v5M8 8h2M14 8h2M8 12h2M14 12h2" }]],
};

const NS = "http://www.w3.org/2000/svg";

/** An <svg class="pict"> for the pictogram `name`, or null if there is none. */
export function pictogram(name) {
  const shapes = SHAPES[name];
  if (!shapes) return null;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "pict");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.dataset.pictogram = name;
  for (const [tag, attrs] of shapes) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    svg.append(node);
  }
  return svg;
}
