"""The write side: headers, the Keras callback and the checkpoint writer.

Only ``tinspect.record.callback`` and ``tinspect.record.capture`` import Keras; importing this
package (e.g. for ``make_header``) does not.
"""
