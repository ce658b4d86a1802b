// bench/lib/report.ts: the benchmarks' HTML page from fixed JSON lines: well-formed SVG charts,
// every figure on the page, nothing fetched from elsewhere; two runs side by side.
import { describe, expect, it } from 'vitest';
import { parseFigures, renderReport } from '../../bench/lib/report.js';

const RUN_A = `
{"name":"js-e2e.max","value":12388,"unit":"msgs/s"}
{"name":"messaging.send_to_delivered.max","value":28744,"unit":"msgs/s","ref":12388,"ratio":2.32}
{"name":"messaging.push_latency.p50","value":1.2,"unit":"ms"}
{"name":"messaging.push_latency.p99","value":5.25,"unit":"ms","ref":2.95,"ratio":1.78}
[cluster bench] a log line, not a figure
{"name":"cluster.send.1t","value":2496,"unit":"msgs/s","trackerCpuSecondsPer1k":0.24,"load1":2.1}
{"name":"cluster.send.2t","value":1219,"unit":"msgs/s","ref":2496,"ratio":0.49,"trackerCpuSecondsPer1k":0.67}
{"name":"cluster.send.3t","value":1038,"unit":"msgs/s","ref":2496,"ratio":0.42,"trackerCpuSecondsPer1k":0.95}
{"name":"messaging.fanout.10","value":49.8,"unit":"deliveries/s per member"}
{"name":"messaging.fanout.100","value":49.5,"unit":"deliveries/s per member"}
{"name":"messaging.fanout.1000","value":48.1,"unit":"deliveries/s per member"}
{"name":"messaging.fanout.1000.p99","value":31.5,"unit":"ms"}
{"name":"odd <name> & co","value":1,"unit":"x"}
`;
const RUN_B = `
{"name":"cluster.send.1t","value":3537,"unit":"msgs/s","trackerCpuSecondsPer1k":0.04}
{"name":"cluster.send.3t","value":5200,"unit":"msgs/s","ref":3537,"ratio":1.47}
`;

/**
 * A strict check of the generated markup inside each <svg>: every tag closed in order,
 * attributes quoted, no raw '<' or bare '&' in text. (The page is generated, so this stands
 * in for an XML parser without adding one to the project.)
 */
function assertWellFormedXml(xml: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    expect(text, 'text with a bare &').not.toMatch(/&(?!(amp|lt|gt|quot|#\d+);)/);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    expect(m, `a malformed tag at ${xml.slice(lt, lt + 60)}`).not.toBeNull();
    const [all, closing, name, , selfClosing] = m!;
    if (closing) expect(stack.pop(), `</${name}> closes something else`).toBe(name);
    else if (!selfClosing) stack.push(name!);
    i = lt + all.length;
  }
  expect(stack).toEqual([]);
}

const svgsOf = (html: string) => html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];

describe('bench report', () => {
  it('keeps the figures of a run and skips what is not one', () => {
    const figures = parseFigures(RUN_A);
    expect(figures).toHaveLength(12);
    expect(figures.find((f) => f.name === 'cluster.send.2t')?.trackerCpuSecondsPer1k).toBe(0.67);
  });

  it('draws a self-contained page with every figure, references, scaling and fan-out', () => {
    const html = renderReport([{ label: 'run-a', figures: parseFigures(RUN_A) }], new Date(0));
    const svgs = svgsOf(html);
    // references (2), cluster send scaling, fan-out per member and p99, push latency percentiles
    expect(svgs.length).toBeGreaterThanOrEqual(6);
    for (const svg of svgs) {
      assertWellFormedXml(svg);
      expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    }
    // Nothing fetched: the only URL is the SVG namespace (an identifier, never loaded).
    const urls = html.match(/(https?:)?\/\/[^\s"'<>)]+/g) ?? [];
    expect(urls.filter((u) => u !== 'http://www.w3.org/2000/svg')).toEqual([]);
    expect(html).not.toMatch(/<(script|link|img|iframe)\b/i);
    for (const f of parseFigures(RUN_A)) {
      const name = f.name.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
      expect(html, f.name).toContain(`<td>${name}</td>`);
    }
    expect(html).toContain('×2.32'); // ratio beside the bar
    expect(html).toContain('1 tracker(s)');
    expect(html).toContain('3 tracker(s)');
    expect(html).toContain('0.95 CPU-s/1k');
    expect(html).toContain('1000 members');
    expect(html).toContain('messaging.push_latency percentiles');
  });

  it('puts two runs on one page, each figure with its change', () => {
    const html = renderReport([
      { label: 'before', figures: parseFigures(RUN_A) },
      { label: 'after', figures: parseFigures(RUN_B) },
    ]);
    for (const svg of svgsOf(html)) assertWellFormedXml(svg);
    expect(html).toContain('<th>before</th><th>after</th>');
    // cluster.send.3t: 5200 / 1038
    expect(html).toMatch(
      /<td>cluster\.send\.3t<\/td><td>1,038<\/td><td>5,200<\/td><td>msgs\/s<\/td><td>5\.01<\/td>/,
    );
    const scaling = svgsOf(html).find((s) => s.includes('cluster.send by trackers'))!;
    expect(scaling).toContain('>before<');
    expect(scaling).toContain('>after<');
  });
});
