import { describe, expect, it } from "vitest";
import { parseTrapLog, varbindValue } from "../../helpers/snmptrapd.js";

const LOG = `NET-SNMP version 5.9.3
##TRAP## v=1 sec=public from=UDP: [127.0.0.1]:46557->[127.0.0.1]:34532
##VB## SNMPv2-MIB::sysUpTime.0 = Timeticks: (91) 0:00:00.91
##VB## SNMPv2-MIB::snmpTrapOID.0 = OID: ZIGBEE2MQTT-HA-MIB::z2mhaSwitchoverSucceeded
##VB## ZIGBEE2MQTT-HA-MIB::z2mhaClusterName.0 = STRING: home
##VB## ZIGBEE2MQTT-HA-MIB::z2mhaOperationStep.0 = STRING: 
##VB## ZIGBEE2MQTT-HA-MIB::z2mhaMessage.0 = STRING: line one
line two
##END##
##TRAP## v=3 sec=z2mha from=UDP: [127.0.0.1]:40000->[127.0.0.1]:34532
##VB## SNMPv2-MIB::sysUpTime.0 = Timeticks: (92) 0:00:00.92
##VB## SNMPv2-MIB::snmpTrapOID.0 = OID: CUSTOM-SCRIPT-MIB::netSnmpScriptResEntry
##VB## CUSTOM-SCRIPT-MIB::scriptStatus.0 = STRING: "OK"
##END##
##TRAP## v=1 sec=public from=UDP: [127.0.0.1]:46557->[127.0.0.1]:34532
##VB## SNMPv2-MIB::sysUpTime.0 = Timeticks: (93) 0:00:00.93
`;

describe("parseTrapLog (test/helpers/snmptrapd.ts)", () => {
  it("reads complete records only, with version, security, trap OID and varbinds", () => {
    const traps = parseTrapLog(LOG);
    expect(traps).toHaveLength(2);
    const [first, second] = traps;
    expect(first).toMatchObject({
      version: "2c",
      security: "public",
      trapOid: "ZIGBEE2MQTT-HA-MIB::z2mhaSwitchoverSucceeded",
    });
    expect(first?.from).toBe("UDP: [127.0.0.1]:46557->[127.0.0.1]:34532");
    expect(first?.varbinds[0]).toEqual({
      name: "SNMPv2-MIB::sysUpTime.0",
      type: "Timeticks",
      value: "(91) 0:00:00.91",
    });
    expect(varbindValue(first!, "z2mhaOperationStep.0")).toBe("");
    expect(varbindValue(first!, "z2mhaMessage.0")).toBe("line one\nline two");
    expect(varbindValue(first!, "z2mhaNodeId.0")).toBeUndefined();
    expect(second).toMatchObject({
      version: "3",
      security: "z2mha",
      trapOid: "CUSTOM-SCRIPT-MIB::netSnmpScriptResEntry",
    });
    expect(varbindValue(second!, "CUSTOM-SCRIPT-MIB::scriptStatus.0")).toBe('"OK"');
  });
});
