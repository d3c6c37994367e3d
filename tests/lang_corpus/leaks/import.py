# expect: import is not allowed
# at: 4:1
x = 1
import numpy as np
