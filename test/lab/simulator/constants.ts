/** ZDO device states (ZDApp.h devStates_t) the simulator passes through. */
export const DevState = {
  HOLD: 0x00,
  INIT: 0x01,
  COORD_STARTING: 0x08,
  ZB_COORD: 0x09,
} as const;

/** STARTUP_OPTION bits (ZComDef.h). */
export const StartupOption = {
  CLEAR_CONFIG: 0x01,
  CLEAR_STATE: 0x02,
  AUTO_START: 0x04,
  CLEAR_NWK_FRAME_COUNTER: 0x80,
} as const;
