"""Session recording, replay and live view, without ROS.

* :mod:`~robot_stack.recording.schemas`: message definitions for every topic type (ROS 2 Kilted's
  standard messages, ``robot_stack``'s own ``msg/*.msg``, any other type installed on the
  ``AMENT_PREFIX_PATH``), their ``ros2msg`` schema text and type hash, CDR (de)serialisation.
* :mod:`~robot_stack.recording.topics`: topic specs (name, type, QoS profile name; the node
  layer builds them from the topic table, ``robot_stack/nodes/topics.py``) and the topic
  selection of the recorder and the live view.
* :mod:`~robot_stack.recording.bag`: a rosbag2 bag in MCAP storage written from (topic, type, CDR
  bytes, time) and read back; ``ros2 bag info|play`` and Foxglove open it.
* :mod:`~robot_stack.recording.images`: ``sensor_msgs/Image`` -> ``sensor_msgs/CompressedImage``
  (JPEG, PNG for 16-bit depth), CDR in, CDR out.
* :mod:`~robot_stack.recording.live`: a Foxglove WebSocket server fed the same way.
* :mod:`~robot_stack.recording.layout`: the Foxglove layout shipped in ``foxglove/``.
* :mod:`~robot_stack.recording.replay`: a recorded session's step records into a fresh learner.

The recorder and live-view nodes (``robot_stack/nodes/recorder_node.py``,
``live_view_node.py``) are thin shells: raw subscriptions hand CDR bytes to these classes, so
no message is deserialised on their hot path (only images that are compressed, and the few
messages the live view turns into Foxglove schemas).
"""
