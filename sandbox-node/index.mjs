// ES module entry: the same objects as the CommonJS one (index.js).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const stockade = require('./index.js');

export const {
  Sandbox,
  Session,
  SandboxProcess,
  doctor,
  setHelperPath,
  helperPath,
  aiSdkSandbox,
  SandboxError,
  PolicyError,
  UnsupportedError,
  HelperError,
  SetupError,
  NotFoundError,
  NotExecutableError,
  SandboxIOError,
  AbortError,
} = stockade;
export default stockade;
