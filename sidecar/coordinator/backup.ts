import { z } from "zod";

/**
 * zigbee2mqtt's coordinator_backup.json: the "zigpy/open-coordinator-backup" format (version 1),
 * written by zigbee-herdsman from the running dongle. Unknown fields are kept (passthrough): the
 * file is handed on to zigpy-znp's network_restore.
 */
const hex = z.string().regex(/^[0-9a-fA-F]+$/);

export const coordinatorBackupSchema = z.looseObject({
  metadata: z.looseObject({
    format: z.literal("zigpy/open-coordinator-backup"),
    version: z.literal(1),
    source: z.string().optional(),
    internal: z.looseObject({ date: z.string().optional() }).optional(),
  }),
  coordinator_ieee: hex,
  pan_id: hex,
  extended_pan_id: hex,
  channel: z.number().int(),
  network_key: z.looseObject({
    key: hex,
    sequence_number: z.number().int(),
    frame_counter: z.number().int().min(0),
  }),
  devices: z.array(z.looseObject({ nwk_address: hex.nullable().optional(), ieee_address: hex })).default([]),
});

export type CoordinatorBackup = z.infer<typeof coordinatorBackupSchema>;

export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackupError";
  }
}

export function parseBackup(text: string): CoordinatorBackup {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new BackupError(`coordinator_backup.json is not JSON: ${(error as Error).message}`);
  }
  const result = coordinatorBackupSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new BackupError(`coordinator_backup.json: ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return result.data;
}

/** When the backup says it was taken, if it says so. */
export function backupDate(backup: CoordinatorBackup): Date | undefined {
  const date = backup.metadata.internal?.date;
  const parsed = date ? new Date(date) : undefined;
  return parsed && !Number.isNaN(parsed.getTime()) ? parsed : undefined;
}

/**
 * herdsman writes `pan_id` and `nwk_address` without zero padding ("1a2" for 0x01a2); zigpy-znp's
 * network_restore rejects anything but 4 hex digits. Everything else is passed through unchanged.
 */
export function toZigpyBackup(backup: CoordinatorBackup): CoordinatorBackup {
  const pad4 = (value: string) => value.toLowerCase().padStart(4, "0");
  return {
    ...backup,
    pan_id: pad4(backup.pan_id),
    devices: backup.devices.map((d) => ({
      ...d,
      ...(typeof d.nwk_address === "string" ? { nwk_address: pad4(d.nwk_address) } : {}),
    })),
  };
}

export interface BackupNetwork {
  ieee: string;
  pan_id: number;
  extended_pan_id: string;
  channel: number;
  network_key: string;
  frame_counter: number;
}

/** Normalised to the forms bridge/info and the NVRAM module use (0x-prefixed, lowercase). */
export function networkOfBackup(backup: CoordinatorBackup): BackupNetwork {
  return {
    ieee: `0x${backup.coordinator_ieee.toLowerCase().padStart(16, "0")}`,
    pan_id: Number.parseInt(backup.pan_id, 16),
    extended_pan_id: `0x${backup.extended_pan_id.toLowerCase().padStart(16, "0")}`,
    channel: backup.channel,
    network_key: backup.network_key.key.toLowerCase(),
    frame_counter: backup.network_key.frame_counter,
  };
}
