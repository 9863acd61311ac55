# A Cython module for the --native tests (DeploymentTests.cythonFramesShowPyxLines): cy_call
# calls back into Python, so a stack through it is Python, then Cython, then Python.
def cy_call(f, int n):
    cdef int i
    result = 0
    for i in range(n):
        result += f(i)  # CY-CALL
    return result
