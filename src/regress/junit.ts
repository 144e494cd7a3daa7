/** JUnit XML for `pktpath assert --junit`: one test case per expectation, so CI systems show the results natively. */
import { XMLBuilder } from 'fast-xml-parser';
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
        '@_name': source.expectations,
        '@_tests': results.length,
        '@_failures': failures,
        '@_errors': 0,
        '@_skipped': 0,
        properties: { property: [{ '@_name': 'trace', '@_value': source.trace }] },
        testcase: results.map((r) => ({
          '@_name': r.name,
          '@_classname': `pktpath.assert.${source.expectations.replace(/[^\w.-]+/g, '_')}`,
          '@_file': source.expectations,
          '@_line': r.line,
          ...(r.ok ? {} : { failure: { '@_message': r.message, '@_type': 'expectation', '#text': r.details.join('\n') } }),
        })),
      },
    },
  }) as string;
}
