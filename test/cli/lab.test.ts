import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { labHelp, parseLabArgs } from '../../src/cli/lab.ts';

const test = suite('cli/lab');

const spec = (defaultPort?: number) => ({
  name: 'xx-test',
  summary: 'a lab for the test',
  commands: { demo: 'the demo', server: 'the server', client: 'the client' },
  options: {},
  ...(defaultPort === undefined ? {} : { defaultPort }),
});

test('defaultPort: the server command listens there without --port; --port (even 0) wins; demo and client keep none', () => {
  assert.is(parseLabArgs(spec(7070), ['server']).common.port, 7070);
  assert.is(parseLabArgs(spec(7070), ['server', '--port', '0']).common.port, 0);
  assert.is(parseLabArgs(spec(7070), ['server', '--port', '9000']).common.port, 9000);
  assert.is(parseLabArgs(spec(7070), []).common.port, undefined, 'the demo');
  assert.is(parseLabArgs(spec(7070), ['client']).common.port, undefined);
  assert.is(parseLabArgs(spec(), ['server']).common.port, undefined, 'no defaultPort: the lab listens on 0');
});

test('defaultPort: --help shows it as the server default', () => {
  assert.match(labHelp(spec(7070)), /--port PORT +port to listen on or connect to \(server default: 7070\)/);
  assert.match(labHelp(spec()), /\(server default: 0, an ephemeral port\)/);
});

test.run();
