/** Where `npm run bench:peers` writes its table in docs/benchmarks.md; `npm run bench` keeps it. */
export const PEERS_START = '<!-- peers:start (written by `npm run bench:peers`) -->';
export const PEERS_END = '<!-- peers:end -->';
