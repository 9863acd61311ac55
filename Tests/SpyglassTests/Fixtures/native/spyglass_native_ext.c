/* A C extension for the --native tests, built by the test with gcc against each interpreter's
 * own headers: spyglass_native_ext.call_back(f) calls f from C, so a merged stack shows f, then
 * this file's spyglass_call_back, then the Python caller. Python 2.7 and 3.x. */
#include <Python.h>

__attribute__((noinline)) static PyObject *spyglass_call_back(PyObject *self, PyObject *callable) {
  (void)self;
  PyObject *result = PyObject_CallObject(callable, NULL);
  __asm__ volatile("" ::: "memory"); /* keeps the call above from becoming a tail call */
  return result;
}

static PyMethodDef methods[] = {
    {"call_back", spyglass_call_back, METH_O, "Calls its argument from C."},
    {NULL, NULL, 0, NULL},
};

#if PY_MAJOR_VERSION >= 3
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "spyglass_native_ext", NULL, -1, methods};
PyMODINIT_FUNC PyInit_spyglass_native_ext(void) { return PyModule_Create(&module); }
#else
PyMODINIT_FUNC initspyglass_native_ext(void) { Py_InitModule("spyglass_native_ext", methods); }
#endif
