// Anchor colours for the perceptually uniform colormaps, copied from matplotlib's published tables
// (`lib/matplotlib/_cm_listed.py`, `_viridis_data` and `_magma_data`, by Stéfan van der Walt and
// Nathaniel Smith, CC0). matplotlib lists 256 entries per map; we keep every 8th entry plus the
// last one (33 anchors) and interpolate linearly between them, which reproduces every one of the 256
// entries to within 2/255 per channel while keeping this file small.
//
// Each anchor is [lut index 0..255, r, g, b] with channels in 0..1.

/** One anchor: its index in the 256-entry table and its red, green, blue in 0..1. */
export type ColorAnchor = readonly [index: number, r: number, g: number, b: number];

/** matplotlib `viridis` anchors (see the file header for provenance). */
export const VIRIDIS_ANCHORS: readonly ColorAnchor[] = [
  [0, 0.267004, 0.004874, 0.329415],
  [8, 0.277018, 0.050344, 0.375715],
  [16, 0.282327, 0.094955, 0.417331],
  [24, 0.282884, 0.135920, 0.453427],
  [32, 0.278826, 0.175490, 0.483397],
  [40, 0.270595, 0.214069, 0.507052],
  [48, 0.258965, 0.251537, 0.524736],
  [56, 0.244972, 0.287675, 0.537260],
  [64, 0.229739, 0.322361, 0.545706],
  [72, 0.214298, 0.355619, 0.551184],
  [80, 0.199430, 0.387607, 0.554642],
  [88, 0.185556, 0.418570, 0.556753],
  [96, 0.172719, 0.448791, 0.557885],
  [104, 0.160665, 0.478540, 0.558115],
  [112, 0.149039, 0.508051, 0.557250],
  [120, 0.137770, 0.537492, 0.554906],
  [128, 0.127568, 0.566949, 0.550556],
  [136, 0.120565, 0.596422, 0.543611],
  [144, 0.120638, 0.625828, 0.533488],
  [152, 0.132268, 0.655014, 0.519661],
  [160, 0.157851, 0.683765, 0.501686],
  [168, 0.196571, 0.711827, 0.479221],
  [176, 0.246070, 0.738910, 0.452024],
  [184, 0.304148, 0.764704, 0.419943],
  [192, 0.369214, 0.788888, 0.382914],
  [200, 0.440137, 0.811138, 0.340967],
  [208, 0.515992, 0.831158, 0.294279],
  [216, 0.595839, 0.848717, 0.243329],
  [224, 0.678489, 0.863742, 0.189503],
  [232, 0.762373, 0.876424, 0.137064],
  [240, 0.845561, 0.887322, 0.099702],
  [248, 0.926106, 0.897330, 0.104071],
  [255, 0.993248, 0.906157, 0.143936],
];

/** matplotlib `magma` anchors (see the file header for provenance). */
export const MAGMA_ANCHORS: readonly ColorAnchor[] = [
  [0, 0.001462, 0.000466, 0.013866],
  [8, 0.013708, 0.011771, 0.068667],
  [16, 0.039608, 0.031090, 0.133515],
  [24, 0.074257, 0.052017, 0.202660],
  [32, 0.113094, 0.065492, 0.276784],
  [40, 0.159018, 0.068354, 0.352688],
  [48, 0.211718, 0.061992, 0.418647],
  [56, 0.265447, 0.060237, 0.461840],
  [64, 0.316654, 0.071690, 0.485380],
  [72, 0.366012, 0.090314, 0.497960],
  [80, 0.414709, 0.110431, 0.504662],
  [88, 0.463508, 0.129893, 0.507652],
  [96, 0.512831, 0.148179, 0.507648],
  [104, 0.562866, 0.165368, 0.504692],
  [112, 0.613617, 0.181811, 0.498536],
  [120, 0.664915, 0.198075, 0.488836],
  [128, 0.716387, 0.214982, 0.475290],
  [136, 0.767398, 0.233705, 0.457755],
  [144, 0.816914, 0.255895, 0.436461],
  [152, 0.863320, 0.283729, 0.412403],
  [160, 0.904281, 0.319610, 0.388137],
  [168, 0.937221, 0.364929, 0.368567],
  [176, 0.960949, 0.418323, 0.359630],
  [184, 0.976690, 0.476226, 0.364466],
  [192, 0.986700, 0.535582, 0.382210],
  [200, 0.992785, 0.594891, 0.410283],
  [208, 0.996096, 0.653659, 0.446213],
  [216, 0.997325, 0.711848, 0.488154],
  [224, 0.996898, 0.769591, 0.534892],
  [232, 0.995131, 0.827052, 0.585701],
  [240, 0.992440, 0.884330, 0.640099],
  [248, 0.989434, 0.941470, 0.697519],
  [255, 0.987053, 0.991438, 0.749504],
];

// ColorBrewer "RdBu" 11-class diverging scheme (Cynthia Brewer, colorbrewer2.org), the same 11 colours
// matplotlib's `RdBu` is built from (`_RdBu_data` in `lib/matplotlib/_cm.py`), evenly spaced over
// the 256 entries. Following matplotlib, low values are dark red and high values dark blue, with a
// near-white centre (#f7f7f7).
const RDBU_HEX = [
  '67001f', 'b2182b', 'd6604d', 'f4a582', 'fddbc7', 'f7f7f7',
  'd1e5f0', '92c5de', '4393c3', '2166ac', '053061',
] as const;

/** matplotlib / ColorBrewer `RdBu` anchors: red (index 0) through white (centre) to blue (255). */
export const RDBU_ANCHORS: readonly ColorAnchor[] = RDBU_HEX.map((hex, i): ColorAnchor => [
  (i * 255) / (RDBU_HEX.length - 1),
  parseInt(hex.slice(0, 2), 16) / 255,
  parseInt(hex.slice(2, 4), 16) / 255,
  parseInt(hex.slice(4, 6), 16) / 255,
]);

/** `gray`: black to white, as matplotlib's `gray`. */
export const GRAY_ANCHORS: readonly ColorAnchor[] = [
  [0, 0, 0, 0],
  [255, 1, 1, 1],
];
