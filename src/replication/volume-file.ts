/*
 * A volume backed by a regular file (a disk image) or a block device. Block devices are opened
 * for writing with O_EXCL: on Linux that makes the kernel refuse a device that is mounted or held
 * by LVM/md/dm (EBUSY), a last guard below the inventory's checks (open(2), "O_EXCL" on block
 * devices). A block device's size comes from sysfs, since stat() reports 0 for it.
 */
import { constants } from "node:fs";
import { open, readFile, stat, type FileHandle } from "node:fs/promises";
import { ioError, ReplicationError } from "./errors.js";

export interface Volume {
  readonly path: string;
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
  write(offset: number, data: Buffer): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

async function blockDeviceSize(rdev: number, path: string): Promise<number> {
  const major = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | ((rdev >> 12) & ~0xff);
  const text = await readFile(`/sys/dev/block/${major}:${minor}/size`, "utf8").catch(() => "");
  const sectors = Number(text.trim());
  if (!text || !Number.isFinite(sectors)) throw new ReplicationError("IO_ERROR", `cannot read the size of block device ${path} from sysfs`);
  return sectors * 512;
}

export async function openVolume(path: string, mode: "read" | "write", side: "agent" | "client"): Promise<Volume> {
  let handle: FileHandle;
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile() && !info.isBlockDevice()) throw new ReplicationError("IO_ERROR", `${side}: ${path} is neither a disk nor a disk-image file`);
    const flags = mode === "read" ? constants.O_RDONLY : constants.O_RDWR | (info.isBlockDevice() ? constants.O_EXCL : 0);
    handle = await open(path, flags);
    size = info.isBlockDevice() ? await blockDeviceSize(info.rdev, path) : info.size;
  } catch (error) {
    if (error instanceof ReplicationError) throw error;
    if ((error as NodeJS.ErrnoException).code === "EBUSY") {
      throw new ReplicationError("TARGET_BUSY", `${side}: ${path} is in use (mounted or held by LVM, md or device-mapper); nothing was written to it`, { cause: error });
    }
    throw ioError(side, "opening", path, 0, error);
  }
  return {
    path,
    size,
    async read(offset, length) {
      const buf = Buffer.alloc(length);
      try {
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return done === length ? buf : buf.subarray(0, done);
      } catch (error) {
        throw ioError(side, "reading", path, offset, error);
      }
    },
    async write(offset, data) {
      try {
        let done = 0;
        while (done < data.length) done += (await handle.write(data, done, data.length - done, offset + done)).bytesWritten;
      } catch (error) {
        throw ioError(side, "writing", path, offset, error);
      }
    },
    async flush() {
      try {
        await handle.datasync();
      } catch (error) {
        throw ioError(side, "flushing", path, 0, error);
      }
    },
    close: () => handle.close(),
  };
}
