/** Libraries pktpath binds on first use, for the features that need them. */
import koffi from 'koffi';

/** A library bound on first use; the error names the Debian package that has it. */
export function loadOptional(name: string, file: string, debianPackage: string): ReturnType<typeof koffi.load> {
  try {
    return koffi.load(file);
  } catch (e) {
    throw new Error(`cannot load ${name} (${file}): ${(e as Error).message}; install ${debianPackage}`);
  }
}
