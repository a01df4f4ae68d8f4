@problemName Gaps
@missing true
@dimensions 2
@equalLength false
@classLabel true a b
@data
?,1,2:3,?,4:a
1,NaN:2,3:b
