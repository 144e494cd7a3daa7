/**
 * JUnit XML for `pktpath assert --junit`: one test case per expectation, so CI systems show the results natively.
 * Texts escaped (../output/escape.ts): XML 1.0 cannot hold most control characters, and CI pages show them.
 */
import { XMLBuilder } from 'fast-xml-parser';
import { escapeLines, escapeText } from '../output/escape.js';
import type { Result } from './assert.js';

export function junitReport(results: Result[], source: { trace: string; expectations: string }): string {
  const failures = results.filter((r) => !r.ok).length;
  const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', format: true });
  return builder.build({
    '?xml': { '@_version': '1.0', '@_encoding': 'UTF-8' },
    testsuites: {
      '@_name': 'pktpath assert',
      '@_tests': results.length,
      '@_failures': failures,
      testsuite: {
        '@_name': escapeText(source.expectations),
        '@_tests': results.length,
        '@_failures': failures,
        '@_errors': 0,
        '@_skipped': 0,
        properties: { property: [{ '@_name': 'trace', '@_value': escapeText(source.trace) }] },
        testcase: results.map((r) => ({
          '@_name': escapeText(r.name),
          '@_classname': `pktpath.assert.${source.expectations.replace(/[^\w.-]+/g, '_')}`,
          '@_file': escapeText(source.expectations),
          '@_line': r.line,
          ...(r.ok ? {} : { failure: { '@_message': escapeText(r.message), '@_type': 'expectation', '#text': escapeLines(r.details.join('\n')) } }),
        })),
      },
    },
  }) as string;
}
