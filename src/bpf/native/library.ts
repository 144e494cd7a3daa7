/** The shared libraries pktpath binds, and the one line that says which package has one that is missing. */
import koffi from 'koffi';

/** Where a library comes from: Debian's (and Ubuntu's) package and Fedora's. */
export interface LibraryPackages {
  debian: string;
  fedora: string;
}

/** `file` bound; a missing one is an error naming the packages that install it. */
export function loadLibrary(name: string, file: string, packages: LibraryPackages): ReturnType<typeof koffi.load> {
  try {
    return koffi.load(file);
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    throw new Error(`cannot load ${name} (${file}): ${why}; install ${packages.debian} (Debian, Ubuntu) or ${packages.fedora} (Fedora)`);
  }
}
