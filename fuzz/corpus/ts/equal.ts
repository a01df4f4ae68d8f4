@univariate true
@equalLength true
@seriesLength 3
@classLabel true x y
@data
1,2,3:x
4,5,6:y
