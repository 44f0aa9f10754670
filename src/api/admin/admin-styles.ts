/**
 * The admin page's whole stylesheet: one constant, inlined in every page (no external assets), and
 * allowed by its hash in the Content-Security-Policy, so no other style (and no script) can run.
 * @module
 */
export const ADMIN_CSS = `
:root{color-scheme:light dark;--bg:#f6f7f9;--card:#fff;--fg:#1d2330;--muted:#667085;--line:#e3e6eb;--accent:#3b5bdb;--ok:#2b8a3e;--warn:#b25e09;--bad:#c92a2a;--chip:#eef0f4}
@media (prefers-color-scheme:dark){:root{--bg:#14161b;--card:#1c1f26;--fg:#e6e8ec;--muted:#98a0ae;--line:#2c313b;--accent:#8ea2ff;--ok:#69db7c;--warn:#ffc078;--bad:#ff8787;--chip:#262a33}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{background:var(--card);border-bottom:1px solid var(--line)}
header div,main{max-width:76rem;margin:0 auto;padding:0 1.25rem}
header div{display:flex;gap:1.5rem;align-items:center;height:3.25rem}
header strong{font-size:15px}
header nav{display:flex;gap:1rem}
header nav a{color:var(--muted);text-decoration:none}
header nav a:hover,header nav a[aria-current]{color:var(--fg)}
main{padding-top:1.25rem;padding-bottom:3rem}
h1{font-size:20px;margin:.25rem 0 1rem}
h2{font-size:16px;margin:0 0 .75rem}
a{color:var(--accent)}
section,.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.25rem;margin-bottom:1rem}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:500;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
tr:last-child td{border-bottom:0}
code,pre,.mono{font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--chip);padding:.6rem .75rem;border-radius:6px;overflow:auto;max-height:16rem;margin:.25rem 0;white-space:pre-wrap;word-break:break-all}
.wrap{word-break:break-all}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:0 .5rem;border-radius:999px;font-size:12px;background:var(--chip);white-space:nowrap}
.badge.ok{color:var(--ok)}.badge.warn{color:var(--warn)}.badge.bad{color:var(--bad)}
.notice{border-left:4px solid var(--ok)}
.problem{border-left:4px solid var(--bad)}
.error{display:block;color:var(--bad);margin:.2rem 0 0;font-size:13px}
.row{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end}
.row>*{margin:0}
.row.center{align-items:center}
.spread{display:flex;justify-content:space-between;align-items:center;gap:1rem}
main>.spread{margin:.25rem 0 1rem}
.spread>h1{margin:0}
label{display:block;font-size:12px;color:var(--muted);margin-bottom:.75rem}
label>input,label>select,label>textarea{display:block;margin-top:.2rem}
input,select,textarea,button,.button{font:inherit;color:inherit}
input,select,textarea{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:.35rem .5rem;min-width:12rem}
input[type=url],textarea{width:100%}
textarea{min-height:4.5rem}
[aria-invalid=true]{border-color:var(--bad)}
button,.button{display:inline-block;background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.35rem .8rem;cursor:pointer;text-decoration:none}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
.danger{color:var(--bad)}
button:hover,.button:hover{border-color:var(--muted)}
form.inline{display:inline}
dl{display:grid;grid-template-columns:9rem 1fr;gap:.4rem 1rem;margin:0}
dt{color:var(--muted)}dd{margin:0;min-width:0}
details>summary{cursor:pointer}
.delivery{border-top:1px solid var(--line);padding:.75rem 0}
.delivery:first-of-type{border-top:0}
.delivery table{margin-top:.4rem}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:1rem;align-items:start;margin-bottom:1rem}
.grid2>section{margin:0}
`;
