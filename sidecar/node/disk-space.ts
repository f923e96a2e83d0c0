export interface DiskSpace {
  totalBytes: number;
  /** Free blocks, including those reserved for root. */
  freeBytes: number;
  /** What an unprivileged user (the SSH user) can still write. */
  availableBytes: number;
  /** How it was measured: the statvfs@openssh.com SFTP extension, or `df -Pk` over exec. */
  source: "statvfs" | "df";
}

/** statvfs@openssh.com answers in blocks of f_frsize; ssh2 returns numbers or bigints. */
export function diskSpaceFromStatvfs(info: {
  f_frsize: number | bigint;
  f_blocks: number | bigint;
  f_bfree: number | bigint;
  f_bavail: number | bigint;
}): DiskSpace {
  const unit = Number(info.f_frsize);
  return {
    totalBytes: Number(info.f_blocks) * unit,
    freeBytes: Number(info.f_bfree) * unit,
    availableBytes: Number(info.f_bavail) * unit,
    source: "statvfs",
  };
}

/**
 * Parses POSIX `df -Pk <path>` output: a header, then one line
 * "<filesystem> <1024-blocks> <used> <available> <capacity> <mounted on>". The file system name may
 * contain spaces, so the numbers are taken from the fixed columns counted from the mount point's
 * side: the first field matching "N N N N%" after the name.
 */
export function parseDfPortable(output: string): DiskSpace | undefined {
  const lines = output.split("\n").filter((line) => line.trim() !== "");
  const data = lines[1];
  if (lines.length < 2 || data === undefined) return undefined;
  const match = /\s(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+\//.exec(data);
  if (!match) return undefined;
  const [total, used, available] = [match[1], match[2], match[3]].map((value) => Number(value) * 1024) as [
    number,
    number,
    number,
  ];
  return { totalBytes: total, freeBytes: total - used, availableBytes: available, source: "df" };
}
