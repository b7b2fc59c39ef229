/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rtnetlink for the rust_pktring selftests, just enough to add a veth pair,
 * delete a link and move one to another network namespace (the programs
 * that take devices away from INGRESS rings: pktring_lifecycle_test.c,
 * pktring_access_test.c). Each request waits for the kernel's ack and
 * returns 0 or -errno.
 */
#ifndef PKTRING_NETLINK_H
#define PKTRING_NETLINK_H

#include "pktring_lib.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

static UNUSED int rtnl_request(struct nlmsghdr *nh)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[4096];
	int fd, ret = -EIO;
	ssize_t len;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (sendto(fd, nh, nh->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
	} else if ((len = recv(fd, buf, sizeof(buf), 0)) > 0) {
		struct nlmsghdr *r = (struct nlmsghdr *)buf;

		if (NLMSG_OK(r, (size_t)len) && r->nlmsg_type == NLMSG_ERROR)
			ret = ((struct nlmsgerr *)NLMSG_DATA(r))->error;
	}
	close(fd);
	return ret;
}

static UNUSED struct rtattr *rta_add(struct nlmsghdr *nh, unsigned short type, const void *data,
				     unsigned short len)
{
	struct rtattr *rta = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));

	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(rta), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(rta->rta_len);
	return rta;
}

/* Ends a nested attribute that rta_add() began with no data. */
static UNUSED void rta_end(struct nlmsghdr *nh, struct rtattr *nest)
{
	nest->rta_len = (char *)nh + nh->nlmsg_len - (char *)nest;
}

struct link_req {
	struct nlmsghdr nh;
	struct ifinfomsg ifi;
	char attrs[512];
};

/* A request of type about link ifindex (0: none yet), attributes to follow. */
static UNUSED void link_req_init(struct link_req *req, uint16_t type, uint16_t flags,
				 int ifindex)
{
	memset(req, 0, sizeof(*req));
	req->nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req->nh.nlmsg_type = type;
	req->nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	req->ifi.ifi_index = ifindex;
}

/* Adds a veth pair name <-> peer; with peer NULL, the kernel names the peer. */
static UNUSED int veth_add(const char *name, const char *peer)
{
	struct link_req req;
	/* The whole request, so that the compiler sees the room for the attributes. */
	struct nlmsghdr *nh = (struct nlmsghdr *)&req;
	struct ifinfomsg peer_ifi = { 0 };
	struct rtattr *info, *data, *peer_attr;

	link_req_init(&req, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	rta_add(nh, IFLA_IFNAME, name, strlen(name) + 1);
	info = rta_add(nh, IFLA_LINKINFO, NULL, 0);
	rta_add(nh, IFLA_INFO_KIND, "veth", 4);
	if (peer) {
		data = rta_add(nh, IFLA_INFO_DATA, NULL, 0);
		/* The peer: its struct ifinfomsg, then its attributes. */
		peer_attr = rta_add(nh, VETH_INFO_PEER, &peer_ifi, sizeof(peer_ifi));
		rta_add(nh, IFLA_IFNAME, peer, strlen(peer) + 1);
		rta_end(nh, peer_attr);
		rta_end(nh, data);
	}
	rta_end(nh, info);
	return rtnl_request(nh);
}

static UNUSED int link_del(int ifindex)
{
	struct link_req req;

	link_req_init(&req, RTM_DELLINK, 0, ifindex);
	return rtnl_request(&req.nh);
}

/* Moves link ifindex into the network namespace of pid. */
static UNUSED int link_set_netns(int ifindex, pid_t pid)
{
	struct link_req req;
	struct nlmsghdr *nh = (struct nlmsghdr *)&req;
	uint32_t p = (uint32_t)pid;

	link_req_init(&req, RTM_NEWLINK, 0, ifindex);
	rta_add(nh, IFLA_NET_NS_PID, &p, sizeof(p));
	return rtnl_request(nh);
}

/* Deletes link name if it exists (and is in this namespace); name may be NULL. */
static UNUSED void link_del_name(const char *name)
{
	int ifindex = name ? (int)if_nametoindex(name) : 0;

	if (ifindex > 0)
		link_del(ifindex);
}

/*
 * Adds the veth pair name <-> peer (peer NULL: the kernel names it),
 * removing one left over from an earlier run first.
 */
static UNUSED int veth_fresh(const char *name, const char *peer)
{
	int ret = veth_add(name, peer);

	if (ret == -EEXIST) {
		link_del_name(name);
		link_del_name(peer);
		ret = veth_add(name, peer);
	}
	return ret;
}

/* Sets link ifindex up. */
static UNUSED int link_up(int ifindex)
{
	struct link_req req;

	link_req_init(&req, RTM_NEWLINK, 0, ifindex);
	req.ifi.ifi_flags = IFF_UP;
	req.ifi.ifi_change = IFF_UP;
	return rtnl_request(&req.nh);
}

/* Adds VLAN id on link, named name. */
static UNUSED int vlan_add(const char *name, int link, uint16_t id)
{
	struct link_req req;
	struct nlmsghdr *nh = (struct nlmsghdr *)&req;
	struct rtattr *info, *data;
	uint32_t l = (uint32_t)link;

	link_req_init(&req, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	rta_add(nh, IFLA_IFNAME, name, strlen(name) + 1);
	rta_add(nh, IFLA_LINK, &l, sizeof(l));
	info = rta_add(nh, IFLA_LINKINFO, NULL, 0);
	rta_add(nh, IFLA_INFO_KIND, "vlan", 4);
	data = rta_add(nh, IFLA_INFO_DATA, NULL, 0);
	rta_add(nh, IFLA_VLAN_ID, &id, sizeof(id));
	rta_end(nh, data);
	rta_end(nh, info);
	return rtnl_request(nh);
}

#endif /* PKTRING_NETLINK_H */
