/**
 * The XDP metadata section (--output-xdp-metadata, pwru's;
 * probes/include/sections/xdp_meta.h): the skb metadata section's form
 * (./skb-meta.ts) on a traced XDP program's xdp_buff, at the entry and exit
 * of the programs --filter-trace-xdp traces. The fields are compiled against
 * struct xdp_buff (XDP_ROOT). Text: `xdp->rxq->queue_index=0x0`.
 */
import { MAX_SKB_META_FIELDS, compileSkbFetch } from '../../filter/skb-expr.js';
import { XDP_ROOT } from '../../filter/skb-expr-resolve.js';
import { fieldSection, fieldsBtf, parseFields } from './skb-meta.js';

export const xdpMetaSection = fieldSection({
  key: 'xdpMeta',
  kind: 17,
  header: 'xdp_meta.h',
  jsonKey: 'xdp_metadata',
  fields: (ctx) => ctx.xdpMeta,
  description: 'With --output-xdp-metadata, at a traced XDP program (--filter-trace-xdp): each xdp_buff field asked for (xdp->rxq->queue_index, ...) ' +
    'and its value; a decimal string past 2^53, {"hex": ...} for a byte range (xdp->data[0:14]), null when a pointer on the way was NULL or the read faulted.',
  option: {
    flags: '--output-xdp-metadata <fields>',
    description: `pwru's: with --filter-trace-xdp, print up to ${MAX_SKB_META_FIELDS} xdp_buff fields of the traced XDP programs' frames, as ` +
      '--output-skb-metadata (e.g. xdp->rxq->dev->ifindex,xdp->rxq->queue_index,xdp->data[0:14]; needs fentry)',
    live: true,
    parse: (text) => parseFields(text, 'xdp->rxq->queue_index'),
    prepare: (fields) => ({ xdpMeta: compileSkbFetch(fields as string[], fieldsBtf(), XDP_ROOT) }),
  },
});
