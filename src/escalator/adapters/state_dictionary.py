"""zlib's preset dictionary for stored ticket states (formats 7 and 8, adapters/state_codec.py).

Eight format-6 ticket states, one per line, made by the default policy from a seeded workload
(benchmarks/workload.py, seed 99, a stream the benchmarks never measure on) with their summaries
emptied: the field values, ids and instants that every stored state repeats. zlib finds them
here instead of in the state itself, so a 1.1 kB state is stored in about 300 bytes.

NEVER CHANGE THIS TEXT: format 7 and 8 states are compressed against it, byte for byte. A better
dictionary is a new format (9) that keeps reading 8 and 7 with this one;
tests/unit/test_stored_formats.py pins its SHA-256.
"""

from __future__ import annotations

from typing import Final

_LINES: Final = (
    (
        b'[6,3,null,7,"D-0","cust-709","enterprise","P2","billing","","L1",1790000000807,"solv'
        b'ed",null,1,"enterprise-P2",1790002982807,[],true,1,4,null,0,[],false,["L1"],["agent-'
        b'22"],2,0,[],["D-0-1","D-0-2","D-0-3","D-0-4","D-0-5","D-0-6"],1790002982807,null,[[1'
        b'790000000807,"new"],[1790001326807,"open"],[1790002982807,"solved"]],1790001200807,1'
        b'790001200807,1790001830807,0,{},"example-2026.11","bench",null,null,[],null,[["L1",1'
        b'790000000807,"created","",["agent-22"]]],null,[],null,false]'
    ),
    (
        b'[6,3,null,7,"D-336","cust-3560","business","P3","search","","L1",1790000673344,"solv'
        b'ed",null,1,"business-P2-P4",1790010993344,[],true,2,4,null,0,[],false,["L1"],["agent'
        b'-98"],2,0,[],["D-336-2428","D-336-2429","D-336-2430","D-336-2431","D-336-2432","D-33'
        b'6-2433"],1790010993344,null,[[1790000673344,"new"],[1790003253344,"open"],[179001099'
        b'3344,"solved"]],1790004873344,1790004873344,1790004873344,0,{},"example-2026.11","be'
        b'nch",null,null,[],null,[["L1",1790000673344,"created","",["agent-98"]]],null,[],null'
        b",false]"
    ),
    (
        b'[6,3,null,7,"D-229","cust-665","business","P2","billing","","L1",1790000458814,"solv'
        b'ed",null,1,"business-P2-P4",1790005378814,[],true,2,4,null,0,[],false,["L1"],["agent'
        b'-62"],3,0,[],["D-229-1660","D-229-1661","D-229-1662","D-229-1663","D-229-1664","D-22'
        b'9-1665","D-229-1666"],1790005378814,null,[[1790000458814,"new"],[1790002876814,"open'
        b'"],[1790005378814,"solved"]],1790003560814,1790003560814,1790003560814,0,{},"example'
        b'-2026.11","bench",null,null,[],null,[["L1",1790000458814,"created","",["agent-62"]]]'
        b",null,[],null,false]"
    ),
    (
        b'[6,3,null,7,"D-128","cust-1865","business","P4","search","","L1",1790000257164,"solv'
        b'ed",null,1,"business-P2-P4",1790015018164,[],true,2,5,null,0,[],false,["L1"],["agent'
        b'-80"],3,0,[],["D-128-940","D-128-941","D-128-942","D-128-943","D-128-944","D-128-945'
        b'","D-128-946","D-128-947","D-128-948"],1790015018164,null,[[1790000257164,"new"],[17'
        b'90003257164,"open"],[1790004037164,"pending"],[1790011178164,"open"],[1790015018164,'
        b'"solved"]],1790012738164,1790012738164,1790012738164,0,{},"example-2026.11","bench",'
        b'null,null,[],null,[["L1",1790000257164,"created","",["agent-80"]]],null,[],null,fals'
        b"e]"
    ),
    (
        b'[6,3,null,7,"D-329","cust-1827","enterprise","P1",null,"","L1",1790000658130,"solved'
        b'",null,1,"enterprise-P1",1790001853130,[],true,1,5,null,0,["hierarchical"],false,["L'
        b'1"],["agent-40"],4,0,["c1/keyword"],["D-329-2380","D-329-2381","D-329-2382","D-329-2'
        b'383","D-329-2384","D-329-2385","D-329-2386","D-329-2387","D-329-2388","D-329-2389"],'
        b'1790001853130,null,[[1790000658130,"new"],[1790000964130,"open"],[1790001396130,"pen'
        b'ding"],[1790001487130,"open"],[1790001853130,"solved"]],1790000958130,1790000958130,'
        b'1790001691130,0,{},"example-2026.11","bench",null,null,[],null,[["L1",1790000658130,'
        b'"created","",["agent-40"]]],null,[],null,false]'
    ),
    (
        b'[6,3,null,7,"D-371","cust-1090","enterprise","P1","search","","L1",1790000743874,"op'
        b'en",null,1,"enterprise-P1",1790001367874,[["resolution","resolution",1790000743874,1'
        b'4400000,"24x7",1790000743874,0,0,false,[],1790015143874,1790011543874,"0.75",null,nu'
        b'll,null,0,false,null],["next_update.1","next_update",1790001043874,1800000,"24x7",17'
        b'90001043874,0,0,false,[],1790002843874,1790002393874,"0.75",null,null,null,0,false,n'
        b'ull],["inactivity.4","inactivity",1790001367874,1800000,"24x7",1790001367874,0,0,fal'
        b"se,[],1790003167874,null,null,null,null,null,0,false,null]],true,1,4,null,0,[],false"
        b',["L1"],["agent-91"],2,0,[],["D-371-2705","D-371-2706","D-371-2707","D-371-2708","D-'
        b'371-2709"],null,null,[[1790000743874,"new"],[1790001067874,"open"]],1790001043874,17'
        b'90001043874,1790001367874,0,{},"example-2026.11","bench",null,null,[],null,[["L1",17'
        b'90000743874,"created","",["agent-91"]]],null,[],null,false]'
    ),
    (
        b'[6,3,null,7,"D-134","cust-2718","business","P1",null,"","L1",1790000269336,"open",nu'
        b'll,1,"business-P1",1790001884336,[["resolution","resolution",1790000269336,28800000,'
        b'"24x7",1790000269336,0,0,false,[],1790029688336,1790022488336,"0.75",null,null,null,'
        b'0,false,null],["inactivity.5","inactivity",1790001884336,1800000,"24x7",179000188433'
        b'6,0,0,false,[],1790003684336,null,null,null,null,null,0,false,null],["next_update.2"'
        b',"next_update",1790001884336,3600000,"24x7",1790001884336,0,0,false,[],1790005484336'
        b',1790004584336,"0.75",null,null,null,0,false,null]],true,2,5,null,0,[],false,["L1"],'
        b'["agent-133"],3,0,[],["D-134-985","D-134-986","D-134-987","D-134-988","D-134-989","D'
        b'-134-990","D-134-991","D-134-992"],null,null,[[1790000269336,"new"],[1790000899336,"'
        b'open"],[1790000941336,"pending"],[1790001560336,"open"]],1790001884336,1790001884336'
        b',1790001884336,0,{},"example-2026.11","bench",null,null,[],null,[["L1",1790000269336'
        b',"created","",["agent-133"]]],null,[],null,false]'
    ),
    (
        b'[6,3,null,7,"D-196","cust-168","standard","P2",null,"","L4",1790000393442,"open",nul'
        b'l,1,"standard-P2-P4",1790088828442,[["resolution","resolution",1790000393442,2880000'
        b'00,"business",1790000393442,0,0,false,[],1791210696442,1790793096442,"0.75",null,nul'
        b'l,null,0,false,null],["next_update.2","next_update",1790088828442,57600000,"business'
        b'",1790088828442,0,0,false,[],1790261628442,1790189628442,"0.75",null,null,null,0,fal'
        b'se,null]],true,2,4,null,3,["functional","hierarchical"],false,["L1","L2","L3","L4"],'
        b'["agent-196"],4,0,[],["D-196-1425","D-196-1426","D-196-1427","D-196-1428","D-196-142'
        b'9","D-196-1430","D-196-1431","D-196-1432","D-196-1433","D-196-1434"],null,null,[[179'
        b'0000393442,"new"],[1790086883442,"open"],[1790087549442,"pending"],[1790088252442,"o'
        b'pen"]],1790088828442,1790088828442,1790088828442,3,{"first_response":1},"example-202'
        b'6.11","bench",null,null,[["D-196/c1/inactivity.2/escalation","slack:#support-l2","te'
        b'am:specialists","",true],["D-196/c1/inactivity.3/escalation","pagerduty:senior-eng-r'
        b'outing-key","team:senior-eng","",true],["D-196/c1/inactivity.3/escalation","slack:#s'
        b'upport-l3","team:senior-eng","",true],["D-196/c1/inactivity.4/escalation","email:sup'
        b'port-directors@example.com","team:support-directors","",true],["D-196/c1/first_respo'
        b'nse/escalation","email:support-directors@example.com","team:support-directors","",tr'
        b'ue]],null,[["L1",1790000393442,"created","",["agent-196"]],["L2",1790007683442,"esca'
        b'lation","No agent activity for 2h while new; escalating from L1 to L2.",[]],["L3",17'
        b'90014883442,"escalation","No agent activity for 2h while new; escalating from L2 to '
        b'L3.",[]],["L4",1790022083442,"escalation","No agent activity for 2h while new; escal'
        b'ating from L3 to L4.",[]]],null,[],null,false]'
    ),
)
STATE_DICTIONARY: Final = b"\n".join(_LINES)
